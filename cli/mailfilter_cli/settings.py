"""Where every `mailfilter` command finds its settings, and the project directory.

A setting comes from the command's flag, then the environment variable, then
the env file `mailfilter local up` writes: <project>/.mailfilter/local.env.json,
shaped like events/env.local.json (`{"Parameters": {...}}`). The file only
supplies resource names (tables, bucket, prefixes, the filter's sender identity,
the configuration set) and where AWS is (AWS_ENDPOINT_URL*, the region); its
dummy credentials only go with its own endpoints, when the environment names
none; never the policy mode or anything else. A variable set in the
environment, even to "", is the environment's answer: the file is not
consulted for it. What a command takes from the file is said on stderr.

The project directory (the one holding template.yaml) is `--project-dir`, else
$MAILFILTER_PROJECT_DIR, else the current directory or the nearest parent
holding template.yaml, else the checkout an editable install runs from. An
installed `mailfilter` needs none for explain, directory, quarantine and
policy; commands that run the stack locally do. The env file is looked for
only in the first three (settings follow where the command runs).

Nothing here is read before a command runs (`--help` needs no settings), and
this module imports nothing heavy: no boto3, rich or pydantic.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import click

PROJECT_DIR_VARIABLE = "MAILFILTER_PROJECT_DIR"
LOCAL_ENV_VARIABLE = "MAILFILTER_LOCAL_ENV"  # another env file; "" reads none
LOCAL_ENV = Path(".mailfilter") / "local.env.json"
MARKER = "template.yaml"
_META_KEY = "mailfilter.project_dir"

# What the env file may supply, besides every AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>.
RESOURCE_NAMES = frozenset(
    {
        "DIRECTORY_TABLE",
        "DECISIONS_TABLE",
        "IDEMPOTENCY_TABLE",
        "MAIL_BUCKET",
        "OUTBOUND_QUEUE_URL",
        "INBOUND_PREFIX",
        "QUARANTINE_PREFIX",
        "FILTER_FROM_ADDRESS",
        "VENDOR_CONFIGURATION_SET",
    }
)
AWS_LOCATION = frozenset({"AWS_REGION", "AWS_DEFAULT_REGION"})
# `mailfilter local up`'s dummy credentials: taken only with the file's endpoints (see use_aws_location).
LOCAL_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


class ProjectNotFoundError(click.UsageError):
    """No project directory (holding template.yaml) was given or found."""


class SettingsFileError(click.ClickException):
    """The env file exists but cannot be read as `{"Parameters": {...}}`."""


def from_file_allowed(name: str) -> bool:
    """Whether the env file may supply `name`."""
    return name in RESOURCE_NAMES or name in AWS_LOCATION or name.startswith("AWS_ENDPOINT_URL")


# ---------------------------------------------------------------- the project directory


def remember_project_dir(ctx: click.Context, value: Path | str | None) -> None:
    """Keep the root command's --project-dir for `project_dir()` (called by the `mailfilter` group)."""
    ctx.meta[_META_KEY] = value


def _given_project_dir() -> Path | str | None:
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get(_META_KEY) if ctx is not None else None


def project_dir(
    explicit: Path | str | None = None, *, required: bool = True, start: Path | None = None, from_checkout: bool = True
) -> Path | None:
    """The project directory: `explicit`, else --project-dir, else $MAILFILTER_PROJECT_DIR, else `start` (cwd) or a parent.

    The first three are taken as given but must hold template.yaml; the search
    looks for the nearest directory that holds it. Failing those, and when
    `from_checkout`, the checkout this package runs from (an editable install).
    Nothing found: `ProjectNotFoundError` when `required`, else None.
    """
    given = explicit or _given_project_dir() or os.environ.get(PROJECT_DIR_VARIABLE) or None
    if given:
        path = Path(given).expanduser().resolve()
        if (path / MARKER).is_file():
            return path
        if required:
            raise ProjectNotFoundError(f"{path} is not a csp-mail-filter project directory: it holds no {MARKER}")
        return None
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / MARKER).is_file():
            return candidate
    if from_checkout and (checkout := _checkout()) is not None:
        return checkout
    if required:
        raise ProjectNotFoundError(
            f"no {MARKER} in {here} or its parents: run this in the csp-mail-filter checkout, "
            f"or pass --project-dir (or set {PROJECT_DIR_VARIABLE})"
        )
    return None


def _checkout() -> Path | None:
    """The source checkout holding this very package (cli/mailfilter_cli/ beside template.yaml), if it runs from one."""
    package = Path(__file__).resolve().parent
    root = package.parent.parent
    return root if package == root / "cli" / "mailfilter_cli" and (root / MARKER).is_file() else None


# ---------------------------------------------------------------- the env file


def local_env_path() -> Path | None:
    """The env file to read: $MAILFILTER_LOCAL_ENV when set ("" for none), else the project's, if it exists."""
    if LOCAL_ENV_VARIABLE in os.environ:
        chosen = os.environ[LOCAL_ENV_VARIABLE]
        return Path(chosen).expanduser() if chosen else None
    project = project_dir(required=False, from_checkout=False)  # settings follow where the command runs
    if project is None:
        return None
    path = project / LOCAL_ENV
    return path if path.is_file() else None


_parsed: dict[tuple[str, int], dict[str, str]] = {}


def local_parameters() -> dict[str, str]:
    """The env file's "Parameters" (empty when there is no file)."""
    path = local_env_path()
    if path is None:
        return {}
    try:
        stamp = (str(path.resolve()), path.stat().st_mtime_ns)
    except OSError as error:
        raise SettingsFileError(f"{path}: cannot read the env file: {error.strerror or error}") from None
    if stamp not in _parsed:
        _parsed[stamp] = _read_parameters(path)
    return _parsed[stamp]


def _read_parameters(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise SettingsFileError(f"{path}: cannot read the env file: {error}") from None
    parameters = data.get("Parameters") if isinstance(data, dict) else None
    if not isinstance(parameters, dict):
        raise SettingsFileError(f'{path}: expected {{"Parameters": {{"NAME": "value", ...}}}}')
    return {str(name): _text(value) for name, value in parameters.items() if value is not None}


def _text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _announce(path: Path | None, name: str, value: str) -> None:
    """Say once per command, on stderr, what came from the env file: a command pointed at the local stack shows it."""
    ctx = click.get_current_context(silent=True)
    seen: set[str] = ctx.find_root().meta.setdefault("mailfilter.announced", set()) if ctx is not None else set()
    if name in seen:
        return
    seen.add(name)
    click.echo(
        f"mailfilter: AWS endpoints {value} (from {path})" if name == "AWS" else f"mailfilter: {name}={value} (from {path})", err=True
    )


# ---------------------------------------------------------------- settings


def setting(name: str, given: str | None = None, *, environ: Mapping[str, str] | None = None) -> str | None:
    """`given` (the flag; click options with envvar= already include the variable), else $name, else the env file."""
    if given:
        return given
    environ = os.environ if environ is None else environ
    if name in environ:
        return environ[name] or None
    if not from_file_allowed(name):
        return None
    value = local_parameters().get(name) or None
    if value is not None:
        _announce(local_env_path(), name, value)
    return value


def require(name: str, given: str | None, *, flag: str, what: str) -> str:
    """`setting(...)`, or a usage error (exit 2) saying every way to give it."""
    value = setting(name, given)
    if not value:
        raise click.UsageError(f"no {what}: pass {flag}, set {name}, or run `mailfilter local up` in the project")
    return value


def use_aws_location(ctx: click.Context | None = None) -> dict[str, str]:
    """Point this command's AWS clients where the env file says, for variables the environment does not set.

    Sets AWS_ENDPOINT_URL* and the region from the file into os.environ for the
    rest of the command (undone when its context closes, so in-process callers
    such as tests are left as they were); returns what it set. The file's
    (dummy) credentials are used only together with its endpoints, and only when
    the environment names no credentials or profile of its own.
    """
    parameters = local_parameters()
    chosen = {
        name: value
        for name, value in parameters.items()
        if name not in os.environ and (name in AWS_LOCATION or name.startswith("AWS_ENDPOINT_URL"))
    }
    endpoints = sorted({value for name, value in chosen.items() if name.startswith("AWS_ENDPOINT_URL")})
    if endpoints and not any(name in os.environ for name in (*LOCAL_CREDENTIALS, "AWS_PROFILE")):
        chosen |= {name: parameters[name] for name in LOCAL_CREDENTIALS if parameters.get(name)}
    if not chosen:
        return {}
    said = ", ".join(endpoints or ["default endpoints"])
    if "AWS_REGION" in chosen:
        said += f"; region {chosen['AWS_REGION']}"
    if "AWS_ACCESS_KEY_ID" in chosen:
        said += "; its dummy credentials"
    _announce(local_env_path(), "AWS", said)
    for name, value in chosen.items():
        os.environ[name] = value
    _reset_clients()
    ctx = ctx or click.get_current_context(silent=True)
    if ctx is not None:

        def undo() -> None:
            for name, value in chosen.items():
                if os.environ.get(name) == value:
                    del os.environ[name]
            _reset_clients()

        ctx.call_on_close(undo)
    return chosen


def _reset_clients() -> None:
    from mailfilter.aws import clients  # noqa: PLC0415 - boto3 only once a command talks to AWS

    clients.reset()
