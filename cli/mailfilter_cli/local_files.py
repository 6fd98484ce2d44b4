"""What `mailfilter local` keeps in the project's .mailfilter/: the supervisor's state file and log, and the env-vars file.

The env-vars file (`local.env.json`) is a `sam local invoke --env-vars` document
naming the local resources and endpoints; `mailfilter invoke` and the other
commands read it (mailfilter_cli.settings), and `local up`/`local env` print it as
`export` lines for a shell.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailfilter_cli import settings

if TYPE_CHECKING:
    from mailfilter_cli.local_services import Services
    from mailfilter_cli.local_stack import Resources

STATE_DIR = settings.LOCAL_ENV.parent  # .mailfilter/ in the project directory, beside the env file other commands read
STATE_FILE, ENV_FILE, LOG_FILE = "local.json", settings.LOCAL_ENV.name, "local.log"


@dataclass(frozen=True)
class Paths:
    """The files of one project's .mailfilter/."""

    project: Path

    @property
    def directory(self) -> Path:
        return self.project / STATE_DIR

    @property
    def state(self) -> Path:
        return self.directory / STATE_FILE

    @property
    def env_file(self) -> Path:
        return self.directory / ENV_FILE

    @property
    def log(self) -> Path:
        return self.directory / LOG_FILE


def project_paths() -> Paths:
    """Where .mailfilter/ goes: the project directory, found as every `mailfilter` command finds it.

    That is --project-dir, $MAILFILTER_PROJECT_DIR, or the current directory or a
    parent holding template.yaml: where the other commands look for the env file.
    """
    return Paths(settings.project_dir(required=True, from_checkout=False))


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Written whole or not at all: readers never see half a file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def read_state(paths: Paths) -> dict[str, Any] | None:
    """The supervisor's state file, or None when there is none (or it cannot be read)."""
    try:
        state = json.loads(paths.state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and isinstance(state.get("pid"), int) else None


def env_vars_document(running: Services, made: Resources) -> dict[str, Any]:
    """The `sam local invoke --env-vars` document for these services: names, endpoints, region, credentials."""
    return {"Parameters": {**made.variables, **running.environment()}}


def export_lines(document: dict[str, Any]) -> str:
    """The env-vars document as `export NAME=value` lines, for `eval` in a shell."""
    return "".join(f"export {name}={shlex.quote(str(value))}\n" for name, value in document.get("Parameters", {}).items())
