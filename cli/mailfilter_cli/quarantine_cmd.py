"""`mailfilter quarantine`: list, show, release and purge blocked mail kept in the mail bucket.

The bucket is needed only when a subcommand runs (`quarantine list --help` needs
nothing); boto3, pydantic and rich are imported then too.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from mailfilter_cli import output, settings

if TYPE_CHECKING:
    from mailfilter.aws.quarantine import Quarantine
    from mailfilter.inbound.filter import InboundFilter
    from mailfilter.inbound.outcome import InboundOutcome
    from mailfilter.vocabulary.holds import QuarantineItem, Release

_AGE = re.compile(r"^(\d+)([dhw])$")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}
_ID_DAY = re.compile(r"^(\d{4})(\d{2})(\d{2})-")
LIST_COLUMNS = ("id", "quarantined (UTC)", "message id", "customers", "blocked recipients", "rules", "released")


def parse_moment(value: str) -> datetime:
    """An age ("7d", "12h", "2w") counted back from now, or an ISO date or time (UTC unless it says otherwise)."""
    match = _AGE.match(value.strip())
    if match:
        return datetime.now(UTC) - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected an age such as 7d, 12h or 2w, or an ISO date such as 2025-01-14") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Moment(click.ParamType):
    name = "AGE|DATE"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        return value if isinstance(value, datetime) else parse_moment(str(value))


def _store(ctx: click.Context) -> Quarantine:
    """The quarantine in the mail bucket, made the first time a subcommand needs it."""
    from mailfilter.aws.quarantine import Quarantine  # noqa: PLC0415

    state = ctx.find_object(dict)
    assert state is not None
    if "quarantine" not in state:
        bucket = settings.require("MAIL_BUCKET", state["bucket"], flag="--bucket", what="mail bucket")
        prefix = settings.setting("QUARANTINE_PREFIX", state["prefix"]) or "quarantine/"
        settings.use_aws_location()
        state["quarantine"] = Quarantine(bucket, prefix)
    return state["quarantine"]


@contextmanager
def _reported() -> Iterator[None]:
    """What S3 or the quarantine refuses, as one line and exit status 1 (not found is a finding too)."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    from mailfilter.vocabulary.errors import QuarantineError, ReleaseError, SendError  # noqa: PLC0415

    try:
        yield
    except (QuarantineError, ReleaseError, SendError) as error:
        raise click.ClickException(str(error)) from None
    except (ClientError, BotoCoreError) as error:
        raise click.ClickException(f"S3: {error}") from None


@click.group()
@click.option("--bucket", envvar="MAIL_BUCKET", show_envvar=True, help="The mail bucket; else from .mailfilter/local.env.json.")
@click.option("--prefix", envvar="QUARANTINE_PREFIX", show_envvar=True, help="Where quarantined items are kept [default: quarantine/].")
@click.pass_context
def quarantine(ctx: click.Context, bucket: str | None, prefix: str | None) -> None:
    """Blocked mail kept in S3: list it, show it, release it, purge it."""
    ctx.obj = {"bucket": bucket, "prefix": prefix}


def _released(item: QuarantineItem) -> str:
    done = item.released
    if done is None:
        return ""
    why = f": {done.reason}" if done.reason else ""
    return f"{done.action} by {done.by} at {done.at:%Y-%m-%d %H:%M}{why}"


def _rules(item: QuarantineItem) -> list[str]:
    return sorted({d["rule"] for d in item.verdict.get("decisions", ()) if d.get("recipient") in item.recipients})


@quarantine.command("list")
@click.option("--customer", metavar="TENANT", help="Only this customer's (tenant id).")
@click.option("--since", type=Moment(), help="Only from this age or date on, e.g. 7d or 2025-01-14.")
@output.format_option(json_alias=True)
@click.pass_context
def list_items(ctx: click.Context, customer: str | None, since: datetime | None, output_format: str) -> None:
    """Quarantined messages, oldest first (json: the whole item, one a line)."""
    store = _store(ctx)
    with _reported():
        items = store.list(customer=customer, since=since)
        if output_format == output.JSON:
            for item in items:
                click.echo(item.model_dump_json())
        elif output_format == output.CSV:
            output.csv_rows([c.split(" (")[0].replace(" ", "_") for c in LIST_COLUMNS], (_row(item, iso=True) for item in items))
        else:
            rows = [_row(item) for item in items]
            output.print_table(output.fit(output.table(*LIST_COLUMNS), rows, keep_whole=(0,)))
            click.echo(f"{len(rows)} item(s)", err=True)


def _row(item: QuarantineItem, *, iso: bool = False) -> list[str]:
    return [
        item.id,
        item.quarantined_at.isoformat() if iso else f"{item.quarantined_at:%Y-%m-%d %H:%M}",
        item.message_id,
        (" " if iso else ", ").join(item.customers),
        (" " if iso else ", ").join(item.recipients),
        (" " if iso else ", ").join(_rules(item)),
        _released(item),
    ]


@quarantine.command()
@click.argument("item_id")
@output.format_option(output.JSON, output.TABLE, default=output.JSON)
@click.pass_context
def show(ctx: click.Context, item_id: str, output_format: str) -> None:
    """The whole item: the original request, every decision, the release if any. Exit status 1 if there is none."""
    from mailfilter.aws.quarantine import to_json  # noqa: PLC0415

    store = _store(ctx)
    with _reported():
        item = store.get(item_id)
    if output_format == output.JSON:
        click.echo(to_json(item))
        return
    console = output.console()
    facts = [
        ("id", item.id),
        ("quarantined", f"{item.quarantined_at:%Y-%m-%d %H:%M:%S} UTC"),
        ("direction", item.direction),
        ("cloud", item.cloud),
        ("message id", item.message_id),
        ("customers", ", ".join(item.customers)),
        ("blocked recipients", ", ".join(item.recipients)),
        ("released", _released(item) or "no"),
    ]
    output.print_table(output.fit(output.table("field", "value", show_header=False), facts, keep_whole=(1,)), console)
    view = output.table("recipient", "action", "effective", "deliver to", "rule", "reason", title="decisions", title_justify="left")
    rows = [
        (d["recipient"], d["action"], d["effective"], "\n".join(d.get("deliver_to", ())) or "(quarantine)", d["rule"], d["reason"])
        for d in item.verdict.get("decisions", ())
    ]
    output.print_table(output.fit(view, rows, keep_whole=(0,)), console)


def _operator() -> str:
    return os.environ.get("MAILFILTER_OPERATOR") or getpass.getuser()


@quarantine.command("release")
@click.argument("item_id")
@click.option(
    "--to", "action", type=click.Choice(["allow", "reroute"]), default=None, help="Deliver as (default allow; not for deferred inbound)."
)
@click.option("--reason", required=True, help="Why it is released; stored on the item with who and when.")
@click.option("--by", default=_operator, show_default="$MAILFILTER_OPERATOR or your login", help="Who releases it.")
@click.option("--decisions-table", envvar="DECISIONS_TABLE", show_envvar=True, help="The decisions table; else from the env file.")
@click.option("--from-address", envvar="FILTER_FROM_ADDRESS", show_envvar=True, help="Sender of partner notices; else from the env file.")
@click.option("--configuration-set", envvar="VENDOR_CONFIGURATION_SET", show_envvar=True, default=None, help="The SES configuration set.")
@output.format_option(output.TABLE, output.JSON)
@click.pass_context
def release_item(
    ctx: click.Context,
    item_id: str,
    action: str | None,
    reason: str,
    by: str,
    decisions_table: str | None,
    from_address: str | None,
    configuration_set: str | None,
    output_format: str,
) -> None:
    """Deliver a quarantined message as allow (to its recipients) or reroute (to their partners).

    Inbound mail is released through the inbound filter, built from its environment
    (DIRECTORY_TABLE, IDEMPOTENCY_TABLE, ... as the function has them); a deferred
    inbound message is run through the filter again, which decides per desk
    (exit status 1 if it is deferred again or not delivered).
    """
    from mailfilter import wiring  # noqa: PLC0415
    from mailfilter.release.inbound import InboundRelease, release_inbound  # noqa: PLC0415
    from mailfilter.vocabulary.model import Action, Direction  # noqa: PLC0415

    if not reason.strip():
        raise click.BadParameter("say why it is released", param_hint="--reason")
    store = _store(ctx)
    decisions_table = settings.require("DECISIONS_TABLE", decisions_table, flag="--decisions-table", what="decisions table")
    from_address = settings.require("FILTER_FROM_ADDRESS", from_address, flag="--from-address", what="sender for partner notices")
    configuration_set = settings.setting("VENDOR_CONFIGURATION_SET", configuration_set)
    with _reported():
        item = store.get(item_id)
        if item.direction == Direction.INBOUND.value:
            inbound = _inbound_filter(store, decisions_table, from_address, configuration_set)
            done = release_inbound(item, action=Action(action) if action else None, by=by, inbound=inbound, why=reason.strip())
        else:
            releaser = wiring.outbound_release(
                bucket=store.bucket,
                quarantine_prefix=store.prefix,
                decisions_table=decisions_table,
                from_address=from_address,
                configuration_set=configuration_set,
            )
            done = InboundRelease(releaser.release(item, action=Action(action or "allow"), by=by, why=reason.strip()))
        recorded = done.release
        store.mark_released(item_id, recorded)
    if output_format == output.JSON:
        output.json_line(_release_dict(item, recorded, done.outcome, done.undelivered))
    elif done.outcome is None:
        click.echo(f"released {item_id} as {recorded.action} to {', '.join(recorded.delivered_to)} (by {recorded.by}: {recorded.reason})")
    else:
        _report_redrive(item, recorded, done.outcome, done.undelivered)
    if done.outcome is not None and done.outcome.deferred:
        raise click.ClickException(f"deferred again: {done.outcome.deferred} (kept as {done.outcome.quarantined or 'no item'})")
    if done.undelivered:
        raise click.ClickException(done.undelivered)


def _inbound_filter(store: Quarantine, decisions_table: str, from_address: str, configuration_set: str | None) -> InboundFilter:
    """The inbound filter as the function builds it, from its environment (then the env file) and this command's options."""
    from mailfilter import wiring  # noqa: PLC0415
    from mailfilter.settings import InboundSettings  # noqa: PLC0415
    from mailfilter.vocabulary.errors import ConfigurationError, ReleaseError  # noqa: PLC0415

    local = {name: value for name in settings.RESOURCE_NAMES if (value := settings.setting(name))}
    overrides = {
        "MAIL_BUCKET": store.bucket,
        "QUARANTINE_PREFIX": store.prefix,
        "DECISIONS_TABLE": decisions_table,
        "FILTER_FROM_ADDRESS": from_address,
    }
    if configuration_set:
        overrides["VENDOR_CONFIGURATION_SET"] = configuration_set
    try:
        return wiring.inbound_filter(InboundSettings.from_env({**local, **os.environ, **overrides}))
    except ConfigurationError as error:
        raise ReleaseError(f"inbound mail is released through the inbound filter, configured as the function is: {error}") from None


def _release_dict(item: QuarantineItem, done: Release, outcome: InboundOutcome | None, undelivered: str | None) -> dict[str, Any]:
    result: dict[str, Any] = {"id": item.id, "direction": item.direction, "released": done.model_dump(mode="json")}
    if outcome is not None:
        result["redrive"] = {
            "disposition": outcome.disposition.value,
            "decisions": [
                {"recipient": d.recipient, "effective": d.effective.value, "rule": d.rule, "deliver_to": list(d.deliver_to)}
                for d in (outcome.verdict.decisions if outcome.verdict else ())
            ],
            "held": list(outcome.held),
            "quarantined": outcome.quarantined,
            "deferred": outcome.deferred,
            "undelivered": undelivered,
        }
    return result


def _report_redrive(item: QuarantineItem, done: Release, outcome: InboundOutcome, undelivered: str | None) -> None:
    """The re-drive's new outcome per desk."""
    from mailfilter.vocabulary.model import Action  # noqa: PLC0415

    click.echo(f"re-drove {item.id} through the filter (by {done.by}: {done.reason}): {outcome.disposition.value}")
    for d in outcome.verdict.decisions if outcome.verdict else ():
        if d.recipient in outcome.held:
            what = f"{d.effective.value} ({d.rule}), kept in quarantine as {outcome.quarantined or 'nothing: see the error'}"
        elif d.effective is Action.ALLOW:
            what = f"allow ({d.rule}), " + ("not forwarded to the desk" if undelivered else "forwarded to the desk")
        else:
            what = f"{d.effective.value} ({d.rule}) to {', '.join(d.deliver_to)}"
        click.echo(f"  {d.recipient}: {what}")


def _day_of(item_id: str) -> datetime | None:
    match = _ID_DAY.match(item_id)
    return datetime(int(match[1]), int(match[2]), int(match[3]), tzinfo=UTC) if match else None


def purge_candidates(store: Quarantine, older_than: datetime) -> list[tuple[str, datetime]]:
    """The items `Quarantine.purge(older_than)` deletes: every item from a day before `older_than`'s (UTC)."""
    cutoff = older_than.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    found = []
    for item_id in store.ids():
        day = _day_of(item_id)
        if day is not None and day < cutoff:
            found.append((item_id, day))
    return found


@quarantine.command()
@click.option("--older-than", type=Moment(), required=True, help="An age such as 30d, or a date: items from days before it go.")
@click.option("--dry-run", is_flag=True, help="List what would go and how many; delete nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@output.format_option()
@click.pass_context
def purge(ctx: click.Context, older_than: datetime, dry_run: bool, yes: bool, output_format: str) -> None:
    """Delete quarantined items (released or not) from days before --older-than.

    The items are counted first, and the count is shown before asking for
    confirmation (on stderr). --dry-run lists them (json: one object a line) and deletes nothing.
    """
    store = _store(ctx)
    day = f"{older_than.astimezone(UTC):%Y-%m-%d}"
    with _reported():
        doomed = purge_candidates(store, older_than)
    if dry_run:
        _list_doomed(doomed, output_format)
        click.echo(f"would purge {len(doomed)} item(s) from before {day}; nothing was deleted", err=output_format != output.TABLE)
        return
    if doomed and not yes:
        click.confirm(f"Delete {len(doomed)} quarantined item(s) from before {day}, released or not?", abort=True, err=True)
    with _reported():
        purged = store.purge(older_than) if doomed else []
    if output_format == output.JSON:
        output.json_line({"purged": len(purged), "before": day, "ids": purged})
    elif output_format == output.CSV:
        output.csv_rows(["id"], ([item_id] for item_id in purged))
    else:
        click.echo(f"purged {len(purged)} item(s)")


def _list_doomed(doomed: list[tuple[str, datetime]], output_format: str) -> None:
    rows = [(item_id, f"{day:%Y-%m-%d}") for item_id, day in doomed]
    if output_format == output.JSON:
        for item_id, day in rows:
            output.json_line({"id": item_id, "day": day})
    elif output_format == output.CSV:
        output.csv_rows(["id", "day"], rows)
    elif rows:
        output.print_table(output.fit(output.table("id", "day"), rows, keep_whole=(0,)))
