"""`mailfilter invoke`: `sam local invoke` without Docker: same template, same events, same results.

After `mailfilter local up` it runs against the local services with no flag: the
env-vars file that command writes (`.mailfilter/local.env.json` in the project
directory, found as every `mailfilter` command finds it) is the default.
Besides the response (standard output, as sam local prints it), it says on
standard error what the invocation did: what SES sent, what was quarantined,
which decisions were recorded, which requests were rejected or deferred and why,
and whether the idempotency table answered a repeated request. It exits 1 when
something was rejected, deferred or failed. `--from-queue` takes the event from the
gateway's queue instead, as its event source mapping would: what `mailfilter send`
and the SMTP intake queued.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

import click

from mailfilter_cli import settings
from mailfilter_cli.local_lambda import Invocation, LocalFunction, drain_queue, environment, sdk_environment
from mailfilter_cli.local_services import answers
from mailfilter_cli.sam_template import FunctionSpec, TemplateError, function_spec, project_template, read_env_vars


def _endpoints(spec: FunctionSpec) -> dict[str, str]:
    """AWS_ENDPOINT_URL* as the function will see them: its own environment over the process's."""
    seen = {name: value for name, value in os.environ.items() if name.startswith("AWS_ENDPOINT_URL") and value}
    seen.update({name: value for name, value in spec.environment.items() if name.startswith("AWS_ENDPOINT_URL") and value})
    return seen


def _check_endpoints(spec: FunctionSpec, env_vars: Path | None) -> None:
    source = f" (from {env_vars})" if env_vars else ""
    endpoints = _endpoints(spec)
    if not endpoints:
        raise click.ClickException(
            "no local AWS endpoints: run `mailfilter local up` (invoke then reads .mailfilter/local.env.json), "
            "or pass --env-vars FILE or AWS_ENDPOINT_URL* naming them"
        )
    for endpoint in sorted(set(endpoints.values())):
        if not answers(endpoint):
            names = ", ".join(name for name, value in endpoints.items() if value == endpoint)
            raise click.ClickException(
                f"nothing answers at {endpoint} ({names}){source}: start the local services with `mailfilter local up`"
            )


def report(invocation: Invocation, spec: FunctionSpec) -> bool:
    """Say what the invocation did, on standard error; True when something was rejected, deferred or failed."""
    say = lambda text: click.echo(text, err=True)  # noqa: E731
    say(f"{invocation.function}:")
    for sent in invocation.sent:
        say(f"  SES sent to {', '.join(sorted(set(sent.recipients)))}: {sent.subject}")
    for item in invocation.quarantined:
        say(f"  quarantined: {item}")
    decided = Counter(record.get("effective") for record in invocation.records("decision"))
    if decided:
        say("  recorded decisions: " + ", ".join(f"{count} {effective}" for effective, count in sorted(decided.items())))
    for record in invocation.records("violation"):
        say(f"  recorded a violation for {record.get('recipient')}: {record.get('reason') or record.get('rule')}")
    problems = False
    for kind in ("rejected", "deferred"):
        by_message: dict[str, list[dict[str, Any]]] = {}
        for record in invocation.records(kind):
            by_message.setdefault(record.get("message_id", "?"), []).append(record)
        for message_id, records in by_message.items():
            problems = True
            recipients = ", ".join(record.get("recipient", "") for record in records)
            say(f"  {kind} {message_id} ({recipients}): {records[0].get('error', '')}")
    failures = (invocation.response or {}).get("batchItemFailures") if isinstance(invocation.response, dict) else None
    for failure in failures or []:
        problems = True
        say(f"  record {failure.get('itemIdentifier')} failed: SQS would deliver it again")
    if invocation.idempotency_answered:
        table = spec.environment.get("IDEMPOTENCY_TABLE", "the idempotency table")
        say(
            f"  already handled: the record in {table} answered {invocation.idempotency_answered} "
            f"request{'s' if invocation.idempotency_answered != 1 else ''} with the first result; nothing was sent or recorded again"
        )
    if not (invocation.sent or invocation.quarantined or invocation.decisions or invocation.idempotency_answered):
        say("  nothing sent, nothing quarantined, nothing recorded")
    return problems


@click.command()
@click.argument("function_id")
@click.option("-e", "--event", "event_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="The event, a JSON file.")
@click.option(
    "--from-queue",
    is_flag=True,
    help="Instead of --event: every request waiting on OUTBOUND_QUEUE_URL (the env file's), as one SQS event, taken off the queue.",
)
@click.option(
    "--env-vars",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help=f"sam local's env-vars JSON (default: the project's {settings.LOCAL_ENV}, written by `mailfilter local up`, when it exists).",
)
@click.option(
    "-t", "--template", "template_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Default: the project's."
)
def invoke(function_id: str, event_file: Path | None, from_queue: bool, env_vars: Path | None, template_file: Path | None) -> None:
    """Invoke FUNCTION_ID of the template with the event in EVENT_FILE and print its response.

    The environment is the template's, as `sam local invoke` sets it, with
    --env-vars applied. AWS endpoints, region and credentials come from the
    file's AWS_* entries (which sam local would ignore: the template does not
    declare them) or from the shell. Exits 1 when a request was rejected, a
    message deferred, a record failed or the function raised.
    """
    if (event_file is None) == (not from_queue):
        raise click.UsageError("give the event: -e EVENT_FILE, or --from-queue")
    if env_vars is None and (env_vars := settings.local_env_path()) is not None:
        click.echo(f"mailfilter: env-vars {env_vars} (written by `mailfilter local up`)", err=True)
    template_file = template_file or project_template()
    try:
        document = read_env_vars(env_vars)
        spec = function_spec(function_id, document, template_file.resolve())
        event = json.loads(event_file.read_text(encoding="utf-8")) if event_file is not None else None
    except (TemplateError, json.JSONDecodeError) as error:
        raise click.ClickException(f"{error}") from None
    with environment(sdk_environment(document, function_id)):
        _check_endpoints(spec, env_vars)
        if event is None:
            queue = document.get("Parameters", {}).get("OUTBOUND_QUEUE_URL") or settings.setting("OUTBOUND_QUEUE_URL")
            if not queue:
                raise click.UsageError("--from-queue: no OUTBOUND_QUEUE_URL in the env-vars file or the environment")
            event = drain_queue(queue)
            if not event["Records"]:
                click.echo(f"nothing waiting on {queue}", err=True)
                return
        # As with sam local, the function's own output (powertools logs and metrics) goes to
        # standard error and the response alone to standard output.
        with contextlib.redirect_stdout(sys.stderr):
            invocation = LocalFunction(spec).run(event)
    if invocation.error is not None:
        error = invocation.error
        click.echo("".join(traceback.format_exception(error)), err=True, nl=False)
        click.echo(json.dumps({"errorMessage": str(error), "errorType": type(error).__name__}, indent=2))
        sys.exit(1)
    click.echo(json.dumps(invocation.response, indent=2, default=str))
    if report(invocation, spec):
        sys.exit(1)
