"""`mailfilter quarantine`: list, show, release and purge blocked mail kept in the mail bucket."""

from __future__ import annotations

import getpass
import os
import re
from datetime import UTC, datetime, timedelta

import click
from rich.console import Console
from rich.table import Table

from mailfilter.aws.decisions import DecisionLog
from mailfilter.aws.mailer import Mailer, SendError
from mailfilter.aws.quarantine import Quarantine, QuarantineError, QuarantineItem, Release, to_json
from mailfilter.inbound import InboundFilter, InboundOutcome, InboundSettings, build_inbound_filter
from mailfilter.model import Action, Direction
from mailfilter.release import InboundRelease, ReleaseError, release, release_inbound
from mailfilter.settings import ConfigurationError

_AGE = re.compile(r"^(\d+)([dhw])$")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


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
    return ctx.obj["quarantine"]


@click.group()
@click.option("--bucket", envvar="MAIL_BUCKET", required=True, help="The mail bucket (default: $MAIL_BUCKET).")
@click.option("--prefix", envvar="QUARANTINE_PREFIX", default="quarantine/", show_default=True, help="($QUARANTINE_PREFIX)")
@click.pass_context
def quarantine(ctx: click.Context, bucket: str, prefix: str) -> None:
    """Blocked mail kept in S3: list it, show it, release it, purge it."""
    ctx.obj = {"quarantine": Quarantine(bucket, prefix)}


@quarantine.command("list")
@click.option("--customer", metavar="TENANT", help="Only this customer's (tenant id).")
@click.option("--since", type=Moment(), help="Only from this age or date on, e.g. 7d or 2025-01-14.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per item instead of a table.")
@click.pass_context
def list_items(ctx: click.Context, customer: str | None, since: datetime | None, as_json: bool) -> None:
    """Quarantined messages, oldest first."""
    items = list(_store(ctx).list(customer=customer, since=since))
    if as_json:
        for item in items:
            click.echo(item.model_dump_json())
        return
    table = Table("id", "quarantined (UTC)", "message id", "customers", "blocked recipients", "rules", "released")
    for item in items:
        rules = sorted({d["rule"] for d in item.verdict["decisions"] if d["recipient"] in item.recipients})
        released = f"{item.released.action} by {item.released.by}" if item.released else ""
        table.add_row(
            item.id,
            f"{item.quarantined_at:%Y-%m-%d %H:%M}",
            item.message_id,
            ", ".join(item.customers),
            ", ".join(item.recipients),
            ", ".join(rules),
            released,
        )
    Console().print(table)
    click.echo(f"{len(items)} item(s)", err=True)


@quarantine.command()
@click.argument("item_id")
@click.pass_context
def show(ctx: click.Context, item_id: str) -> None:
    """The whole item: the original request, every decision, the release if any."""
    try:
        click.echo(to_json(_store(ctx).get(item_id)))
    except QuarantineError as error:
        raise click.ClickException(str(error)) from None


@quarantine.command("release")
@click.argument("item_id")
@click.option(
    "--to", "action", type=click.Choice(["allow", "reroute"]), default=None, help="Deliver as (default allow; not for deferred inbound)."
)
@click.option("--by", default=lambda: os.environ.get("MAILFILTER_OPERATOR") or getpass.getuser(), help="Who releases it.")
@click.option("--decisions-table", envvar="DECISIONS_TABLE", required=True, help="($DECISIONS_TABLE)")
@click.option("--from-address", envvar="FILTER_FROM_ADDRESS", required=True, help="Sender of partner notices ($FILTER_FROM_ADDRESS).")
@click.option("--configuration-set", envvar="VENDOR_CONFIGURATION_SET", default=None, help="($VENDOR_CONFIGURATION_SET)")
@click.pass_context
def release_item(
    ctx: click.Context, item_id: str, action: str | None, by: str, decisions_table: str, from_address: str, configuration_set: str | None
) -> None:
    """Deliver a quarantined message as allow (to its recipients) or reroute (to their partners).

    Inbound mail is released through the inbound filter, built from its environment
    (DIRECTORY_TABLE, IDEMPOTENCY_TABLE, ... as the function has them); a deferred
    inbound message is run through the filter again, which decides per desk.
    """
    store = _store(ctx)
    try:
        item = store.get(item_id)
        if item.direction == Direction.INBOUND.value:
            inbound = _inbound_filter(store, decisions_table, from_address, configuration_set)
            done = release_inbound(item, action=Action(action) if action else None, by=by, inbound=inbound)
        else:
            done = InboundRelease(
                release(
                    item,
                    action=Action(action or "allow"),
                    by=by,
                    mailer=Mailer(configuration_set=configuration_set),
                    decisions=DecisionLog(decisions_table),
                    from_address=from_address,
                )
            )
    except (QuarantineError, ReleaseError, SendError) as error:
        raise click.ClickException(str(error)) from None
    store.mark_released(item_id, done.release)
    if done.outcome is None:
        outcome = done.release
        click.echo(f"released {item_id} as {outcome.action} to {', '.join(outcome.delivered_to)} (by {outcome.by})")
        return
    _report_redrive(item, done.release, done.outcome, done.undelivered)


def _inbound_filter(store: Quarantine, decisions_table: str, from_address: str, configuration_set: str | None) -> InboundFilter:
    """The inbound filter as the function builds it, from its environment and this command's options."""
    overrides = {
        "MAIL_BUCKET": store.bucket,
        "QUARANTINE_PREFIX": store.prefix,
        "DECISIONS_TABLE": decisions_table,
        "FILTER_FROM_ADDRESS": from_address,
    }
    if configuration_set:
        overrides["VENDOR_CONFIGURATION_SET"] = configuration_set
    try:
        return build_inbound_filter(InboundSettings.from_env({**os.environ, **overrides}))
    except ConfigurationError as error:
        raise ReleaseError(f"inbound mail is released through the inbound filter, configured as the function is: {error}") from None


def _report_redrive(item: QuarantineItem, done: Release, outcome: InboundOutcome, undelivered: str | None) -> None:
    """The re-drive's new outcome per desk; a non-zero exit when something is still not delivered."""
    click.echo(f"re-drove {item.id} through the filter (by {done.by}): {outcome.disposition.value}")
    for d in outcome.verdict.decisions if outcome.verdict else ():
        if d.recipient in outcome.held:
            what = f"{d.effective.value} ({d.rule}), kept in quarantine as {outcome.quarantined or 'nothing: see the error'}"
        elif d.effective is Action.ALLOW:
            what = f"allow ({d.rule}), " + ("not forwarded to the desk" if undelivered else "forwarded to the desk")
        else:
            what = f"{d.effective.value} ({d.rule}) to {', '.join(d.deliver_to)}"
        click.echo(f"  {d.recipient}: {what}")
    if outcome.deferred:
        raise click.ClickException(f"deferred again: {outcome.deferred} (kept as {outcome.quarantined or 'no item'})")
    if undelivered:
        raise click.ClickException(undelivered)


@quarantine.command()
@click.option("--older-than", type=Moment(), required=True, help="An age such as 30d, or a date: items from days before it go.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def purge(ctx: click.Context, older_than: datetime, yes: bool) -> None:
    """Delete quarantined items (released or not) from days before --older-than."""
    if not yes:
        click.confirm(f"Delete every quarantined item from before {older_than:%Y-%m-%d}?", abort=True)
    purged = _store(ctx).purge(older_than)
    click.echo(f"purged {len(purged)} item(s)")
