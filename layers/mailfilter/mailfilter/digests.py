"""Digests: what the filter did, told by mail to the people it concerns (docs/policy.md, "Digests").

- **Daily, to each sending identity** (an application team's `from` address): every recipient of
  its mail the filter blocked or rerouted the day before (UTC), with the rule, the reason, the
  customer, the message id and, where blocked, the quarantine id and how to ask for a release.
- **Weekly, to each partner** (its contacts as the directory gave them when the mail was
  decided): per customer, how many messages were rerouted to it in the seven days before the
  policy's `weekday`, by direction, category and product, with their message ids.

The policy's `[digests]` table says what goes to whom; nothing is sent unless it says
`enabled = true`. `sender_digests` and `partner_digests` are pure (decision records in, `Digest`s
out); `run_digests` reads a period's records, and sends each digest once through the ports it is
given (`MessageLedger.once` of `mailfilter.aws.ledger` makes "once" hold when the schedule fires twice).
"""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid
from typing import Any

from mailfilter.aws.quarantine import quarantine_id
from mailfilter.delivery.mime import header_safe
from mailfilter.policy.config import Digests, Policy, Weekday
from mailfilter.vocabulary.addresses import domain_of, mask
from mailfilter.vocabulary.errors import DigestRequestError

SENDERS, PARTNERS = "senders", "partners"
KINDS = (SENDERS, PARTNERS)
LISTED_PER_CUSTOMER = 50  # message ids listed per customer in a partner summary; the rest are counted
WEEKDAYS = list(Weekday)  # Monday first, as date.weekday() counts

Record = Mapping[str, Any]
Once = Callable[[str, Callable[[], dict[str, Any]]], dict[str, Any]]
ReadPeriod = Callable[["Period"], Iterable[Record]]


@dataclass(frozen=True)
class Period:
    """Whole UTC days, `first` to `last` inclusive."""

    first: date
    last: date

    @classmethod
    def day_before(cls, moment: datetime) -> Period:
        day = moment.astimezone(UTC).date() - timedelta(days=1)
        return cls(day, day)

    @classmethod
    def week_before(cls, moment: datetime) -> Period:
        last = moment.astimezone(UTC).date() - timedelta(days=1)
        return cls(last - timedelta(days=6), last)

    @property
    def key(self) -> str:
        return self.first.isoformat() if self.first == self.last else f"{self.first.isoformat()}..{self.last.isoformat()}"

    @property
    def since(self) -> datetime:
        return datetime.combine(self.first, time.min, UTC)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.last, time.max, UTC)

    @property
    def label(self) -> str:
        if self.first == self.last:
            return _day(self.first)
        return f"{_day(self.first)} to {_day(self.last)}"


def _day(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


@dataclass(frozen=True)
class DigestRequest:
    """Which digest, and for which period; `scheduled` says the period came from the schedule's time."""

    kind: str
    moment: datetime
    period: Period
    scheduled: bool


def request_from_event(event: Mapping[str, Any], now: datetime | None = None) -> DigestRequest:
    """The digest a schedule event asks for.

    The template's EventBridge Scheduler schedules send `{"digest": "senders"|"partners",
    "scheduled_time": "<aws.scheduler.scheduled-time>"}`; an `AWS::Events::Rule` target's
    `{"digest": ..., "time": ...}` works the same. An operator re-running one period gives
    `"period_end": "YYYY-MM-DD"` (the day, or the last of the seven days) instead of a time.
    """
    if not isinstance(event, Mapping):
        raise DigestRequestError("the event is not a JSON object")
    kind = event.get("digest")
    if kind not in KINDS:
        raise DigestRequestError(f'the event must say "digest": "senders" or "partners", not {kind!r}')
    if event.get("period_end") is not None:
        try:
            last = date.fromisoformat(str(event["period_end"]))
        except ValueError:
            raise DigestRequestError(f"period_end: expected a date such as 2025-01-14, not {event['period_end']!r}") from None
        first = last if kind == SENDERS else last - timedelta(days=6)
        return DigestRequest(kind, datetime.combine(last + timedelta(days=1), time.min, UTC), Period(first, last), scheduled=False)
    given = event.get("scheduled_time") or event.get("time")
    if given is None:
        moment = now or datetime.now(UTC)
    else:
        try:
            moment = datetime.fromisoformat(str(given).replace("Z", "+00:00"))
        except ValueError:
            raise DigestRequestError(f"scheduled_time: expected an ISO 8601 time, not {given!r}") from None
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    period = Period.day_before(moment) if kind == SENDERS else Period.week_before(moment)
    return DigestRequest(kind, moment, period, scheduled=True)


@dataclass(frozen=True)
class Digest:
    """One digest for one identity or partner and one period: its recipients, subject, text and HTML."""

    kind: str  # SENDERS or PARTNERS
    about: str  # the sending identity, or "<cloud>/<partner id>"
    period: Period
    to: tuple[str, ...]
    subject: str
    text: str
    html: str
    entries: int  # recipients (sender digests) or messages (partner summaries) it reports

    @property
    def key(self) -> str:
        """What makes it once: one digest per kind, period and identity or partner (`senders#2025-01-14#billing@...`)."""
        return f"{self.kind}#{self.period.key}#{self.about}"

    def message(self, from_address: str, *, now: datetime | None = None) -> bytes:
        """multipart/alternative: the text first, the HTML as the richer alternative."""
        message = EmailMessage()
        message["From"] = from_address
        message["To"] = ", ".join(self.to)
        message["Subject"] = self.subject
        message["Date"] = formatdate((now or datetime.now(UTC)).timestamp(), usegmt=True)
        message["Message-ID"] = make_msgid("digest", domain=domain_of(from_address))
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies to a digest
        message.set_content(self.text)
        message.add_alternative(self.html, subtype="html")
        return message.as_bytes(policy=SMTP)


# ---------------------------------------------------------------- sender digests (daily)


@dataclass(frozen=True)
class _Line:
    """One recipient of one message, as a sender digest reports it."""

    at: str
    message_id: str
    subject: str | None
    recipient: str
    customer: str
    outcome: str  # "blocked", "rerouted", "audit-blocked", "audit-rerouted"
    rule: str
    reason: str
    partners: str
    quarantine: str | None
    released: str | None


OUTCOME_HEADINGS = {
    "blocked": "Blocked: kept in quarantine, not delivered",
    "rerouted": "Rerouted: sent to the customer's CSP partner instead",
    "audit-blocked": "Would be blocked (a rule on trial, or audit mode): delivered as sent",
    "audit-rerouted": "Would be rerouted (a rule on trial, or audit mode): delivered as sent",
}


def _outcome(record: Record) -> str | None:
    action, effective = record.get("action"), record.get("effective")
    if effective == "block":
        return "blocked"
    if effective == "reroute":
        return "rerouted"
    if effective == "allow" and action in ("block", "reroute"):
        return "audit-blocked" if action == "block" else "audit-rerouted"
    return None


def _customer(record: Record) -> str:
    name, tenant = record.get("customer_name"), record.get("customer")
    if name and tenant:
        return f"{name} ({tenant})"
    return name or tenant or "not in the directory"


def _partner_names(record: Record) -> str:
    view = record.get("customer_view") or {}
    names = {p.get("partner_id"): p.get("name") for p in view.get("partners", [])}
    wanted = [names.get(pid) or pid for pid in record.get("partners") or ()]
    return ", ".join(wanted) or ", ".join(record.get("deliver_to") or ()) or "-"


def _released(records: Iterable[Record]) -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for record in records:
        if record.get("kind") == "released":
            found[(record["message_id"], record["recipient"])] = (
                f"released {record['at'][:16].replace('T', ' ')} UTC as {record['effective']}"
            )
    return found


def sender_digests(records: Iterable[Record], policy: Policy, period: Period) -> list[Digest]:
    """Per sending identity in scope, its blocked and rerouted recipients of `period`; none for an identity with none."""
    settings = policy.digests
    scope = settings.senders.identities
    kept: list[Record] = []
    for record in records:
        if record.get("direction") != "outbound" or record.get("kind") not in ("decision", "released"):
            continue
        if record.get("kind") == "released" or (record.get("sender") and _outcome(record) is not None):
            kept.append(record)
    released = _released(kept)
    by_identity: dict[str, list[_Line]] = defaultdict(list)
    for record in kept:
        sender = record.get("sender")
        if record.get("kind") != "decision" or not sender or (scope != "all" and sender not in scope):
            continue
        outcome = _outcome(record)
        assert outcome is not None
        quarantined = None
        if outcome == "blocked":
            quarantined = quarantine_id(record["message_id"], datetime.fromisoformat(record["at"].replace("Z", "+00:00")))
        recipient = record["recipient"]
        by_identity[sender].append(
            _Line(
                at=record["at"],
                message_id=record["message_id"],
                subject=record.get("subject") if settings.subjects else None,
                recipient=mask(recipient) if settings.mask_recipients else recipient,
                customer=_customer(record),
                outcome=outcome,
                rule=record.get("rule", "-") + (f" (seed rule {record['seed_rule']})" if record.get("seed_rule") else ""),
                reason=record.get("reason", ""),
                partners=_partner_names(record),
                quarantine=quarantined,
                released=released.get((record["message_id"], recipient)),
            )
        )
    digests = []
    for identity in sorted(by_identity):
        lines = sorted(by_identity[identity], key=lambda line: (line.at, line.message_id, line.recipient))
        to = tuple(settings.senders.send_to.get(identity, [identity]))
        subject = header_safe(f"Mail filter: your blocked and rerouted mail from {identity}, {period.label}")
        digests.append(
            Digest(
                SENDERS,
                identity,
                period,
                to,
                subject,
                _sender_text(identity, lines, settings, period),
                _sender_html(identity, lines, settings, period),
                len(lines),
            )
        )
    return digests


def _counts(lines: list[_Line]) -> str:
    counted = Counter(line.outcome for line in lines)
    words = {"blocked": "blocked", "rerouted": "rerouted", "audit-blocked": "would have blocked", "audit-rerouted": "would have rerouted"}
    return ", ".join(f"{words[o]} {counted[o]}" for o in OUTCOME_HEADINGS if counted[o])


def _release_command(quarantine: str) -> str:
    return f'mailfilter quarantine release {quarantine} --reason "<why it may reach the customer; your ticket>"'


def _sender_text(identity: str, lines: list[_Line], settings: Digests, period: Period) -> str:
    out = [
        f"Blocked and rerouted mail from {identity} on {period.label} (UTC)",
        "",
        "The mail filter applies the Cloud Solution Provider rules to every recipient of the mail",
        f"sent through the gateway. For mail from {identity} it {_counts(lines)} recipient(s).",
    ]
    number = 0
    for outcome, heading in OUTCOME_HEADINGS.items():
        chosen = [line for line in lines if line.outcome == outcome]
        if not chosen:
            continue
        out += ["", heading.upper(), ""]
        for line in chosen:
            number += 1
            subject = f'  "{line.subject}"' if line.subject else ""
            out.append(f"{number}. {line.at[11:16]} UTC  message {line.message_id}{subject}")
            out.append(f"   recipient:  {line.recipient}")
            out.append(f"   customer:   {line.customer}")
            if outcome.endswith("rerouted"):
                out.append(f"   partner:    {line.partners}")
            out.append(f"   rule:       {line.rule}")
            out.append(f"   reason:     {line.reason}")
            if line.quarantine:
                out.append(f"   quarantine: {line.quarantine}" + (f" ({line.released})" if line.released else ""))
    out += ["", "HOW TO ASK FOR A RELEASE", ""]
    blocked = [line for line in lines if line.quarantine and not line.released]
    if blocked:
        out += [
            "Blocked mail is kept in quarantine; nothing reached the customer. If a message should reach it",
            f"(or its partner), write to {settings.release_contact} with the quarantine id and why.",
            "The mail filter's operators then release it with:",
            "",
        ]
        out += [f"  {_release_command(q)}" for q in dict.fromkeys(line.quarantine for line in blocked if line.quarantine)]
        out += ["", "(`--to reroute` sends it to the customer's partner instead of the customer.)"]
    else:
        out.append(f"Nothing of this day waits in quarantine. Questions about a rule: {settings.release_contact}.")
    out += [
        "",
        "Rerouted mail has reached the customer's partner already; there is nothing to release.",
        "Mail about operational matters and service incidents always reaches the customer directly:",
        "declare its category in the send request if the filter read it otherwise.",
        "",
        "-- ",
        "Sent by the mail filter once a day; the policy's [digests] table says who receives it.",
    ]
    return "\n".join(out) + "\n"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


_TABLE = 'style="border-collapse:collapse;font-family:sans-serif;font-size:13px"'
_CELL = 'style="border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top"'


def _table(headings: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th {_CELL}>{_e(h)}</th>" for h in headings)
    body = "".join("<tr>" + "".join(f"<td {_CELL}>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table {_TABLE}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _page(title: str, parts: list[str]) -> str:
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>'
        + _e(title)
        + '</title></head><body style="font-family:sans-serif;font-size:14px">'
        + "".join(parts)
        + "</body></html>\n"
    )


def _sender_html(identity: str, lines: list[_Line], settings: Digests, period: Period) -> str:
    title = f"Blocked and rerouted mail from {identity} on {period.label} (UTC)"
    parts = [
        f"<h2>{_e(title)}</h2>",
        f"<p>The mail filter applies the Cloud Solution Provider rules to every recipient of the mail sent through the gateway. "
        f"For mail from <b>{_e(identity)}</b> it {_e(_counts(lines))} recipient(s).</p>",
    ]
    for outcome, heading in OUTCOME_HEADINGS.items():
        chosen = [line for line in lines if line.outcome == outcome]
        if not chosen:
            continue
        rows = []
        for line in chosen:
            where = _e(line.partners) if outcome.endswith("rerouted") else ""
            if line.quarantine:
                where = f"<code>{_e(line.quarantine)}</code>" + (f" ({_e(line.released)})" if line.released else "")
            rows.append(
                [
                    _e(f"{line.at[11:16]} UTC"),
                    f"<code>{_e(line.message_id)}</code>" + (f"<br>{_e(line.subject)}" if line.subject else ""),
                    _e(line.recipient),
                    _e(line.customer),
                    _e(line.rule),
                    _e(line.reason),
                    where,
                ]
            )
        last = "quarantine" if outcome == "blocked" else "partner" if outcome.endswith("rerouted") else ""
        parts += [f"<h3>{_e(heading)}</h3>", _table(["time", "message", "recipient", "customer", "rule", "reason", last], rows)]
    parts.append("<h3>How to ask for a release</h3>")
    blocked = list(dict.fromkeys(line.quarantine for line in lines if line.quarantine and not line.released))
    if blocked:
        contact = _e(settings.release_contact)
        parts.append(
            "<p>Blocked mail is kept in quarantine; nothing reached the customer. If a message should reach it (or its partner), "
            f'write to <a href="mailto:{contact}">{contact}</a> with the quarantine id and why. '
            "The mail filter's operators then release it with:</p>"
        )
        parts.append("<pre>" + "\n".join(_e(_release_command(q)) for q in blocked if q) + "</pre>")
        parts.append("<p>(<code>--to reroute</code> sends it to the customer's partner instead of the customer.)</p>")
    else:
        parts.append(f"<p>Nothing of this day waits in quarantine. Questions about a rule: {_e(settings.release_contact)}.</p>")
    parts.append(
        "<p>Rerouted mail has reached the customer's partner already; there is nothing to release. Mail about operational "
        "matters and service incidents always reaches the customer directly: declare its category in the send request if "
        "the filter read it otherwise.</p><hr><p><small>Sent by the mail filter once a day; the policy's [digests] table "
        "says who receives it.</small></p>"
    )
    return _page(title, parts)


# ---------------------------------------------------------------- partner summaries (weekly)


@dataclass
class _PartnerWeek:
    cloud: str
    partner_id: str
    name: str = ""
    contacts: tuple[str, ...] = ()
    contacts_at: str = ""
    # per customer: (direction, category, product) -> message ids; and message id -> subject
    customers: dict[str, dict[tuple[str, str, str], set[str]]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(set)))
    subjects: dict[str, str] = field(default_factory=dict)


def partner_digests(records: Iterable[Record], policy: Policy, period: Period) -> list[Digest]:
    """Per partner that mail was rerouted to in `period`: counts per customer, by direction, category and product."""
    settings = policy.digests
    weeks: dict[tuple[str, str], _PartnerWeek] = {}
    for record in records:
        if record.get("kind") not in ("decision", "released") or record.get("effective") != "reroute":
            continue  # audit-mode reroutes were delivered to the customer, not the partner
        view = record.get("customer_view") or {}
        known = {p.get("partner_id"): p for p in view.get("partners", [])}
        partner_ids = list(record.get("partners") or ())
        for partner_id in partner_ids:
            week = weeks.setdefault((record.get("cloud", "?"), partner_id), _PartnerWeek(record.get("cloud", "?"), partner_id))
            link = known.get(partner_id)
            contacts = tuple(link.get("contacts", ())) if link else (tuple(record.get("deliver_to") or ()) if len(partner_ids) == 1 else ())
            if contacts and record["at"] >= week.contacts_at:  # the contacts the latest decision saw
                week.contacts, week.contacts_at = contacts, record["at"]
            if link and link.get("name"):
                week.name = link["name"]
            direction = record.get("direction", "?") + (" (released)" if record.get("kind") == "released" else "")
            key = (direction, record.get("category", "?"), record.get("product") or "-")
            week.customers[_customer(record)][key].add(record["message_id"])
            if record.get("subject") and settings.subjects:
                week.subjects[record["message_id"]] = record["subject"]
    digests = []
    for (cloud, partner_id), week in sorted(weeks.items()):
        if not week.contacts:
            continue  # a partner without a contact address got no mail either (it was blocked: partner-without-contact)
        name = week.name or partner_id
        messages = sum(len({m for ids in by_kind.values() for m in ids}) for by_kind in week.customers.values())
        subject = header_safe(f"Mail filter: mail rerouted to {name} for your CSP customers, {period.label}")
        digests.append(
            Digest(
                PARTNERS,
                f"{cloud}/{partner_id}",
                period,
                week.contacts,
                subject,
                _partner_text(week, name, period),
                _partner_html(week, name, period),
                messages,
            )
        )
    return digests


def _listed(week: _PartnerWeek, by_kind: dict[tuple[str, str, str], set[str]]) -> tuple[list[str], int]:
    ids = sorted({m for found in by_kind.values() for m in found})
    shown = [f'{m}  "{week.subjects[m]}"' if m in week.subjects else m for m in ids[:LISTED_PER_CUSTOMER]]
    return shown, len(ids) - len(shown)


def _partner_text(week: _PartnerWeek, name: str, period: Period) -> str:
    out = [
        f"Mail rerouted to {name} ({week.cloud}), {period.label} (UTC)",
        "",
        "Under the Cloud Solution Provider rules the vendor does not write to your CSP customers about what you",
        "own for them; its mail filter sent that mail to you instead. This is what it sent you this week.",
    ]
    for customer in sorted(week.customers):
        by_kind = week.customers[customer]
        total = len({m for found in by_kind.values() for m in found})
        out += ["", f"{customer}: {total} message(s)", ""]
        out.append(f"  {'direction':<20} {'category':<18} {'product':<20} messages")
        for (direction, category, product), found in sorted(by_kind.items()):
            out.append(f"  {direction:<20} {category:<18} {product:<20} {len(found)}")
        shown, more = _listed(week, by_kind)
        out += ["", "  message ids:"] + [f"    {m}" for m in shown] + ([f"    ... and {more} more"] if more else [])
    out += [
        "",
        "Each message reached you when it was sent, as a notice with the original attached. Write to the",
        "vendor's partner desk if one of them should not have come to you.",
        "",
        "-- ",
        "Sent by the vendor's mail filter once a week.",
    ]
    return "\n".join(out) + "\n"


def _partner_html(week: _PartnerWeek, name: str, period: Period) -> str:
    title = f"Mail rerouted to {name} ({week.cloud}), {period.label} (UTC)"
    parts = [
        f"<h2>{_e(title)}</h2>",
        "<p>Under the Cloud Solution Provider rules the vendor does not write to your CSP customers about what you own for "
        "them; its mail filter sent that mail to you instead. This is what it sent you this week.</p>",
    ]
    for customer in sorted(week.customers):
        by_kind = week.customers[customer]
        total = len({m for found in by_kind.values() for m in found})
        rows = [[_e(d), _e(c), _e(p), _e(len(found))] for (d, c, p), found in sorted(by_kind.items())]
        shown, more = _listed(week, by_kind)
        parts += [
            f"<h3>{_e(customer)}: {total} message(s)</h3>",
            _table(["direction", "category", "product", "messages"], rows),
            "<p>message ids:</p><ul>" + "".join(f"<li><code>{_e(m)}</code></li>" for m in shown) + "</ul>",
        ]
        if more:
            parts.append(f"<p>... and {more} more</p>")
    parts.append(
        "<p>Each message reached you when it was sent, as a notice with the original attached. Write to the vendor's partner "
        "desk if one of them should not have come to you.</p><hr><p><small>Sent by the vendor's mail filter once a week.</small></p>"
    )
    return _page(title, parts)


# ---------------------------------------------------------------- one run


def run_digests(
    request: DigestRequest,
    *,
    policy: Policy,
    read: ReadPeriod,
    send: Callable[[Digest], str],
    once: Once,
    log: Any = None,
) -> dict[str, Any]:
    """Read the period's records, build the digests, and send each once; what happened, for the handler's response.

    `send` puts one digest on the wire and returns SES's message id; `once(key, work)` runs
    `work` the first time `key` is seen and answers later calls with `{"replayed": True, ...}`.
    A digest whose send fails is reported under "failed" and does not stop the others; the
    handler raises afterwards, so the schedule's retry sends just those.
    """
    settings = policy.digests
    result: dict[str, Any] = {"digest": request.kind, "period": request.period.key, "sent": [], "already_sent": [], "failed": []}
    section = settings.senders if request.kind == SENDERS else settings.partners
    if not settings.enabled or not section.enabled:
        switch = "enabled" if not settings.enabled else f"{request.kind}.enabled"
        _say(log, f"digests are off in the policy ([digests] {switch} = false): nothing sent", result)
        return {**result, "status": "off"}
    if request.kind == PARTNERS and request.scheduled:
        weekday = WEEKDAYS[request.moment.astimezone(UTC).weekday()]
        if weekday != settings.partners.weekday:
            _say(
                log, f"partner summaries go out on {settings.partners.weekday.value}s (policy), not {weekday.value}s: nothing sent", result
            )
            return {**result, "status": "not-today"}
    records = read(request.period)
    digests = (
        sender_digests(records, policy, request.period) if request.kind == SENDERS else partner_digests(records, policy, request.period)
    )
    for digest in digests:
        try:
            outcome = once(digest.key, lambda digest=digest: {"ses_message_id": send(digest)})
        except Exception as error:  # one digest's failure must not keep the others from going out
            result["failed"].append({"about": digest.about, "error": str(error)})
            if log is not None:
                log.error("digest not sent", extra={"digest": digest.key, "error": str(error)})
            continue
        result["already_sent" if outcome.get("replayed") else "sent"].append(digest.about)
    result["status"] = "failed" if result["failed"] else "done"
    if log is not None:
        log.info("digests", extra={k: v for k, v in result.items() if k != "failed"} | {"failed": len(result["failed"])})
    return result


def _say(log: Any, message: str, result: dict[str, Any]) -> None:
    result["message"] = message
    if log is not None:
        log.info(message, extra={"digest": result["digest"], "period": result["period"]})
