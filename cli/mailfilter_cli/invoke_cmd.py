"""`mailfilter invoke`: `sam local invoke` without Docker: same template, same events, same results."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import click

from mailfilter_cli.local_lambda import LocalFunction
from mailfilter_cli.sam_template import TEMPLATE, TemplateError, function_spec, read_env_vars


@click.command()
@click.argument("function_id")
@click.option("-e", "--event", "event_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--env-vars", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="sam local's env-vars JSON.")
@click.option("-t", "--template", "template_file", default=TEMPLATE, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def invoke(function_id: str, event_file: Path, env_vars: Path | None, template_file: Path) -> None:
    """Invoke FUNCTION_ID of the template with the event in EVENT_FILE and print its response.

    The environment is the template's, as `sam local invoke` sets it, with
    --env-vars applied; AWS endpoints come from AWS_ENDPOINT_URL* as usual
    (events/env.local.json points DynamoDB at DynamoDB Local).
    """
    try:
        spec = function_spec(function_id, read_env_vars(env_vars), template_file.resolve())
        event = json.loads(event_file.read_text(encoding="utf-8"))
    except (TemplateError, json.JSONDecodeError) as error:
        raise click.ClickException(f"{error}") from None
    # As with sam local, the function's own output (powertools logs and metrics) goes to
    # standard error and the response alone to standard output.
    with contextlib.redirect_stdout(sys.stderr):
        response = LocalFunction(spec).invoke(event)
    click.echo(json.dumps(response, indent=2, default=str))
