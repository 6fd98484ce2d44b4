"""Digests: what the filter did, told by mail to the people it concerns (docs/policy.md, "Digests").

- **Daily, to each sending identity** (an application team's `from` address): every recipient of
  its mail the filter blocked or rerouted the day before (UTC), with the rule, the reason, the
  customer, the message id and, where blocked, the quarantine id and how to ask for a release.
- **Weekly, to each partner** (its contacts as the directory gave them when the mail was
  decided): per customer, how many messages were rerouted to it in the seven days before the
  policy's `weekday`, by direction, category and product, with their message ids.

The policy's `[digests]` table says what goes to whom; nothing is sent unless it says
`enabled = true`. The modules, in the order a run uses them:

- `request`: the schedule event read as a `DigestRequest`: which kind, which `Period`.
- `gather`: `sender_digests` and `partner_digests`, pure: a period's decision records in,
  grouped per sending identity or per partner, `Digest`s out.
- `digest`: what one digest is (`Digest`: recipients, subject, text, HTML, its once-key, its
  MIME message) and the lines it reports (`SenderLine`, `PartnerWeek`).
- `render`: the text and HTML of a sender digest and of a partner summary.
- `run`: `run_digests`: reads a period's records and sends each digest once through the ports
  it is given (`mailfilter.ports.ReadPeriod`, `Once`; `MessageLedger.once` of
  `mailfilter.aws.ledger` makes "once" hold when the schedule fires twice).
"""
