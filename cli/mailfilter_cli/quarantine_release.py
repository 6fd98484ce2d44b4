"""`mailfilter quarantine release`: deliver a kept message, through the same use cases the functions run (`mailfilter.wiring`)."""

from __future__ import annotations

import getpass
import os
from typing import TYPE_CHECKING, Any

import click

from mailfilter_cli import output, settings
from mailfilter_cli.quarantine_store import quarantine_of, reported

if TYPE_CHECKING:
    from mailfilter.aws.quarantine import Quarantine
    from mailfilter.inbound.filter import InboundFilter
    from mailfilter.inbound.outcome import InboundOutcome
    from mailfilter.vocabulary.holds import QuarantineItem, Release


def _operator() -> str:
    return os.environ.get("MAILFILTER_OPERATOR") or getpass.getuser()


@click.command("release")
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
    store = quarantine_of(ctx)
    decisions_table = settings.require("DECISIONS_TABLE", decisions_table, flag="--decisions-table", what="decisions table")
    from_address = settings.require("FILTER_FROM_ADDRESS", from_address, flag="--from-address", what="sender for partner notices")
    configuration_set = settings.setting("VENDOR_CONFIGURATION_SET", configuration_set)
    with reported():
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
