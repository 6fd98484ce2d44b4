"""The text and the HTML of a digest: a sender's daily digest, a partner's weekly summary.

Plain text first (what every mail client shows), the same content as HTML for the richer
alternative; every value that came from a record is escaped in the HTML.
"""

from __future__ import annotations

import html
from collections import Counter

from mailfilter.digests.digest import PartnerWeek, SenderLine
from mailfilter.digests.request import Period
from mailfilter.policy.sections import Digests

LISTED_PER_CUSTOMER = 50  # message ids listed per customer in a partner summary; the rest are counted

OUTCOME_HEADINGS = {
    "blocked": "Blocked: kept in quarantine, not delivered",
    "rerouted": "Rerouted: sent to the customer's CSP partner instead",
    "audit-blocked": "Would be blocked (a rule on trial, or audit mode): delivered as sent",
    "audit-rerouted": "Would be rerouted (a rule on trial, or audit mode): delivered as sent",
}


# ---------------------------------------------------------------- sender digests (daily)


def _counts(lines: list[SenderLine]) -> str:
    counted = Counter(line.outcome for line in lines)
    words = {"blocked": "blocked", "rerouted": "rerouted", "audit-blocked": "would have blocked", "audit-rerouted": "would have rerouted"}
    return ", ".join(f"{words[o]} {counted[o]}" for o in OUTCOME_HEADINGS if counted[o])


def _release_command(quarantine: str) -> str:
    return f'mailfilter quarantine release {quarantine} --reason "<why it may reach the customer; your ticket>"'


def sender_text(identity: str, lines: list[SenderLine], settings: Digests, period: Period) -> str:
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


def sender_html(identity: str, lines: list[SenderLine], settings: Digests, period: Period) -> str:
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


def _listed(week: PartnerWeek, by_kind: dict[tuple[str, str, str], set[str]]) -> tuple[list[str], int]:
    ids = sorted({m for found in by_kind.values() for m in found})
    shown = [f'{m}  "{week.subjects[m]}"' if m in week.subjects else m for m in ids[:LISTED_PER_CUSTOMER]]
    return shown, len(ids) - len(shown)


def partner_text(week: PartnerWeek, name: str, period: Period) -> str:
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


def partner_html(week: PartnerWeek, name: str, period: Period) -> str:
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
