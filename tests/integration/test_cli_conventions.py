"""One convention for every `mailfilter` command, and an install that works anywhere.

--help without settings; --version; --format table|json|csv (JSON Lines for
streams); nothing cut in a pipe however narrow COLUMNS is; `-` for standard
input; settings from flag, then environment, then .mailfilter/local.env.json;
purge --dry-run; release --reason (test_quarantine_cli.py); subcommands
imported lazily; a non-editable `pip install` that runs outside the checkout.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from moto import mock_aws

from mailfilter.aws import clients
from mailfilter.aws.quarantine import Quarantine
from mailfilter.vocabulary.holds import QuarantineItem
from mailfilter.vocabulary.model import Cloud
from mailfilter_cli import output, settings
from mailfilter_cli.main import LazyGroup, cli
from mailfilter_cli.quarantine_cmd import LIST_COLUMNS
from mailfilter_testkit.paths import ROOT

EVENTS = ROOT / "events"
DIRECTORY = EVENTS / "directory.jsonl"
SAMPLE = EVENTS / "outbound-mixed-allowed-rerouted-blocked.json"
BUCKET = "conventions-mail"
LONG = "a-rather-long-mailbox-name-for-column-tests@subsidiary.tailspintoys.example"
# Nothing a developer's shell or `mailfilter local up` set may reach these tests.
SETTINGS = ("DIRECTORY_TABLE", "DECISIONS_TABLE", "IDEMPOTENCY_TABLE", "MAIL_BUCKET", "QUARANTINE_PREFIX", "FILTER_FROM_ADDRESS")
SETTINGS += ("VENDOR_CONFIGURATION_SET", "MAILFILTER_PROJECT_DIR", "COLUMNS")


@pytest.fixture(autouse=True)
def no_outside_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(settings.LOCAL_ENV_VARIABLE, "")  # no env file unless a test writes one


def invoke(*args: str, **kwargs: Any) -> Result:
    return CliRunner().invoke(cli, list(args), **kwargs)


def json_lines(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines()]


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def command_paths(group: click.Group = cli, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command of the tree, the group itself first."""
    yield prefix
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from command_paths(command, (*prefix, name))
        elif command is not None:
            yield (*prefix, name)


def bare_environment(home: Path) -> dict[str, str]:
    """An environment with no settings at all: the PATH to find programs, a HOME, nothing else."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8"}


# ---------------------------------------------------------------- --help, --version, lazy loading


@pytest.mark.parametrize("path", [" ".join(p) or "(mailfilter)" for p in command_paths()])
def test_every_help_runs_with_no_settings_at_all(path: str, tmp_path: Path) -> None:
    words = [] if path == "(mailfilter)" else path.split()
    done = subprocess.run(
        [sys.executable, "-m", "mailfilter_cli.main", *words, "--help"],
        cwd=tmp_path,
        env=bare_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Usage: mailfilter" in done.stdout


def test_version_is_the_installed_package_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"mailfilter (csp-mail-filter) {version('csp-mail-filter')}"


@pytest.mark.parametrize(
    "words",
    [["--help"], ["explain", "--help"], ["quarantine", "list", "--help"], ["directory", "import", "--help"], ["policy", "check", "--help"]],
    ids=" ".join,
)
def test_help_imports_neither_aws_nor_rich_nor_pydantic(words: list[str], tmp_path: Path) -> None:
    probe = (
        "import json, sys\n"
        "from mailfilter_cli.main import cli\n"
        f"cli({words!r}, standalone_mode=False)\n"
        "heavy = ('boto3', 'botocore', 'rich', 'pydantic', 'moto', 'yaml')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == []


def test_subcommands_register_lazily_and_load_on_use() -> None:
    group = LazyGroup("probe")
    group.add_command("mailfilter_cli.no_such_module:local", short_help="Run the stack locally.")
    group.add_command("mailfilter_cli.policy_cmd:policy")
    listing = CliRunner().invoke(group, ["--help"])
    assert listing.exit_code == 0  # the missing module is not imported to list it
    assert "local   Run the stack locally." in listing.output
    assert "Validate and show policy files." in listing.output  # no short help given: read from the command
    with pytest.raises(ModuleNotFoundError):
        CliRunner().invoke(group, ["local"], catch_exceptions=False)


def test_every_registered_command_imports_and_has_a_listing() -> None:
    ctx = click.Context(cli)
    for name, (_spec, short_help) in cli.lazy_commands.items():
        assert isinstance(cli.get_command(ctx, name), click.Command), name
        assert short_help, name


# ---------------------------------------------------------------- formats


def test_explain_formats(tmp_path: Path) -> None:
    as_json = json_lines(invoke("explain", str(SAMPLE), "--directory", str(DIRECTORY), "--format", "json").stdout)
    [verdict] = as_json
    rows = csv_rows(invoke("explain", str(SAMPLE), "--directory", str(DIRECTORY), "--format", "csv").stdout)
    assert [(r["recipient"], r["effective"], r["rule"]) for r in rows] == [
        (d["recipient"], d["effective"], d["rule"]) for d in verdict["decisions"]
    ]
    assert all(r["message_id"] == verdict["message_id"] for r in rows)
    table = invoke("explain", str(SAMPLE), "--directory", str(DIRECTORY), "--format", "table")
    assert table.exit_code == 0
    assert f"[{verdict['cloud']} (" in table.stdout  # the title's bracketed classification is text, not markup


def test_policy_check_formats() -> None:
    [policy] = json_lines(invoke("policy", "check", "--format", "json").stdout)
    assert (policy["valid"], policy["mode"]) == (True, "enforce")
    rows = csv_rows(invoke("policy", "check", "--format", "csv").stdout)
    assert [r["rule"] for r in rows] == [rule["id"] for rule in policy["rules"]]
    assert len(rows) == policy["counts"]["rules"]


def test_an_unknown_format_is_a_usage_error() -> None:
    result = invoke("policy", "check", "--format", "yaml")
    assert result.exit_code == 2
    assert "'yaml' is not one of 'table', 'json', 'csv'" in result.stderr


# ---------------------------------------------------------------- full values in pipes


def test_piped_tables_are_never_cut_however_narrow_the_columns(tmp_path: Path) -> None:
    """A real pipe (not a terminal) with COLUMNS=40: every address and rule whole, no ellipsis."""
    event = tmp_path / "event.json"
    request = json.loads(json.loads(SAMPLE.read_text(encoding="utf-8"))["Records"][0]["body"])
    event.write_text(json.dumps({**request, "to": [*request["to"], LONG]}), encoding="utf-8")
    env = {**os.environ, "COLUMNS": "40"}
    for words in (["explain", str(event), "--directory", str(DIRECTORY), "--format", "table"], ["policy", "check"]):
        done = subprocess.run(
            [sys.executable, "-m", "mailfilter_cli.main", *words], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        assert "…" not in done.stdout
        assert max(len(line) for line in done.stdout.splitlines()) > 40
        if words[0] == "explain":
            assert LONG in done.stdout
        else:
            assert "product-mail-for-csp-customer" in done.stdout


@pytest.mark.parametrize(("width", "id_whole"), [(40, False), (80, True), (160, True)])
def test_in_a_terminal_ids_stay_whole_where_they_fit_and_nothing_is_cropped(width: int, id_whole: bool) -> None:
    from rich.console import Console  # noqa: PLC0415

    item_id = "20250114-3f9c0a1b2c3d4e5f6a7b"
    row = (item_id, "2025-01-14 10:00", "news-2025-01", "7d1e9b20-tailspin", LONG, "product-mail-for-csp-customer", "")
    view = output.fit(output.table(*LIST_COLUMNS), [row], keep_whole=(0,))
    screen = io.StringIO()
    output.print_table(view, Console(file=screen, width=width, force_terminal=True, color_system=None))
    lines = screen.getvalue().splitlines()
    assert all(len(line) <= width and line[-1] in "┓┃┩│┘" for line in lines)  # every column's right edge is there
    assert (item_id in screen.getvalue()) is id_whole
    assert "…" not in screen.getvalue()


# ---------------------------------------------------------------- standard input


def test_explain_reads_an_event_from_stdin() -> None:
    from_file = invoke("explain", str(SAMPLE), "--directory", str(DIRECTORY))
    from_stdin = invoke("explain", "-", "--directory", str(DIRECTORY), input=SAMPLE.read_text(encoding="utf-8"))
    assert from_stdin.exit_code == 0, from_stdin.output
    assert from_stdin.stdout == from_file.stdout
    bad = invoke("explain", "-", "--directory", str(DIRECTORY), input="{not json")
    assert bad.exit_code == 1
    assert bad.stderr.startswith("Error: <stdin>: cannot read the event")
    twice = invoke("explain", "-", "-", "--directory", str(DIRECTORY), input="{}")
    assert twice.exit_code == 2


def test_policy_check_reads_stdin_and_names_it_in_errors() -> None:
    shipped = (ROOT / "layers/mailfilter/mailfilter/policy/default.toml").read_text(encoding="utf-8")
    ok = invoke("policy", "check", "-", input=shipped)
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.startswith("<stdin>: mode enforce")
    broken = invoke("policy", "check", "-", input=shipped.replace('mode = "enforce"', 'mode = "x"'))
    assert broken.exit_code == 1
    assert "<stdin>: invalid policy" in broken.stderr
    assert "stdin.toml" not in broken.stderr


# ---------------------------------------------------------------- settings


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory with an env file as `mailfilter local up` writes it; the current directory is inside it."""
    root = tmp_path / "project"
    (root / ".mailfilter").mkdir(parents=True)
    (root / "sub").mkdir()
    (root / "template.yaml").write_text("Resources: {}\n", encoding="utf-8")
    parameters = {
        "DIRECTORY_TABLE": "local-directory",
        "MAIL_BUCKET": BUCKET,
        "MAILFILTER_MODE": "audit",
        "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9",
        "AWS_REGION": "eu-west-3",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
    }
    (root / ".mailfilter" / "local.env.json").write_text(json.dumps({"Parameters": parameters}), encoding="utf-8")
    monkeypatch.chdir(root / "sub")
    monkeypatch.delenv(settings.LOCAL_ENV_VARIABLE)
    return root


def in_command(run: Any) -> Any:
    with click.Context(click.Command("probe")) as ctx:
        return run(ctx)


def test_a_setting_comes_from_the_flag_then_the_environment_then_the_env_file(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert in_command(lambda _: settings.setting("DIRECTORY_TABLE", "from-flag")) == "from-flag"
    assert in_command(lambda _: settings.setting("DIRECTORY_TABLE")) == "local-directory"
    assert in_command(lambda _: settings.setting("MAILFILTER_MODE")) is None  # the file gives names and endpoints only
    monkeypatch.setenv("DIRECTORY_TABLE", "from-environment")
    assert in_command(lambda _: settings.setting("DIRECTORY_TABLE")) == "from-environment"
    monkeypatch.setenv("DIRECTORY_TABLE", "")
    assert in_command(lambda _: settings.setting("DIRECTORY_TABLE")) is None  # set empty: the environment's answer
    monkeypatch.setenv(settings.LOCAL_ENV_VARIABLE, "")
    monkeypatch.delenv("DIRECTORY_TABLE")
    assert in_command(lambda _: settings.setting("DIRECTORY_TABLE")) is None


def test_the_env_file_points_aws_clients_for_the_command_only(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)

    def run(ctx: click.Context) -> dict[str, str | None]:
        settings.use_aws_location(ctx)
        return {name: os.environ.get(name) for name in ("AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_ACCESS_KEY_ID")}

    assert in_command(run) == {"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9", "AWS_REGION": "eu-west-3", "AWS_ACCESS_KEY_ID": "local"}
    assert "AWS_ENDPOINT_URL_S3" not in os.environ  # undone when the command ends
    assert "AWS_REGION" not in os.environ
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "mine")  # the environment's own credentials are never replaced
    assert in_command(run)["AWS_ACCESS_KEY_ID"] == "mine"


def test_commands_take_the_bucket_from_the_env_file(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / ".mailfilter" / "local.env.json").write_text(json.dumps({"Parameters": {"MAIL_BUCKET": BUCKET}}), encoding="utf-8")
    with mock_aws():
        clients.reset()
        clients.client("s3").create_bucket(Bucket=BUCKET)
        stored = Quarantine(BUCKET).put(**_item("m-1", datetime(2025, 1, 2, tzinfo=UTC)))
        result = invoke("quarantine", "list", "--format", "json")
    clients.reset()
    assert result.exit_code == 0, result.output
    assert [line["id"] for line in json_lines(result.stdout)] == [stored.id]
    assert f"MAIL_BUCKET={BUCKET} (from {project / '.mailfilter' / 'local.env.json'})" in result.stderr


def test_a_missing_setting_is_a_usage_error_naming_every_way_to_give_it() -> None:
    result = invoke("quarantine", "list")
    assert result.exit_code == 2
    assert "no mail bucket: pass --bucket, set MAIL_BUCKET, or run `mailfilter local up`" in result.stderr


def test_the_project_directory_is_the_flag_the_variable_or_the_nearest_holding_template_yaml(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert settings.project_dir() == project  # from project/sub, the parent
    assert settings.project_dir(ROOT) == ROOT
    monkeypatch.setenv(settings.PROJECT_DIR_VARIABLE, str(ROOT))
    assert settings.project_dir() == ROOT
    assert in_command(lambda ctx: (settings.remember_project_dir(ctx, project), settings.project_dir())[1]) == project
    monkeypatch.setenv(settings.PROJECT_DIR_VARIABLE, str(tmp_path))
    with pytest.raises(settings.ProjectNotFoundError, match=r"holds no template\.yaml"):
        settings.project_dir()
    monkeypatch.delenv(settings.PROJECT_DIR_VARIABLE)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(settings.ProjectNotFoundError, match="--project-dir"):
        settings.project_dir(from_checkout=False)
    assert settings.project_dir(required=False, from_checkout=False) is None
    assert settings.project_dir() == ROOT  # these tests run from an editable install of the checkout


def test_a_malformed_env_file_is_a_clear_error(project: Path) -> None:
    (project / ".mailfilter" / "local.env.json").write_text('{"DIRECTORY_TABLE": "x"}', encoding="utf-8")
    result = invoke("directory", "stats")
    assert result.exit_code == 1
    assert 'expected {"Parameters": {"NAME": "value", ...}}' in result.stderr


# ---------------------------------------------------------------- quarantine: formats, narrow pipes, purge


def _item(message_id: str, at: datetime, recipients: tuple[str, ...] = (LONG,)) -> dict[str, Any]:
    decision = {"action": "block", "effective": "block", "rule": "product-mail-for-csp-customer", "reason": "test"}
    return {
        "message_id": message_id,
        "direction": "outbound",
        "cloud": "commercial",
        "recipients": list(recipients),
        "customers": ["7d1e9b20-tailspin-with-a-long-tenant-identifier"],
        "request": {"subject": "hello"},
        "verdict": {"decisions": [{**decision, "recipient": r} for r in recipients]},
        "now": at,
    }


@pytest.fixture
def quarantined(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Three items in moto's S3: two from January 2025, one from today."""
    with mock_aws():
        clients.reset()
        clients.client("s3").create_bucket(Bucket=BUCKET)
        store = Quarantine(BUCKET)
        ids = [
            store.put(**_item("old-1", datetime(2025, 1, 2, tzinfo=UTC))).id,
            store.put(**_item("old-2", datetime(2025, 1, 20, tzinfo=UTC), (LONG, "cfo@tailspintoys.com"))).id,
            store.put(**_item("new-1", datetime.now(UTC))).id,
        ]
        monkeypatch.setenv("MAIL_BUCKET", BUCKET)
        yield ids
    clients.reset()


def stored_ids() -> list[str]:
    return list(Quarantine(BUCKET).ids())


def test_quarantine_list_in_a_40_column_pipe_keeps_every_id_and_address_whole(quarantined: list[str]) -> None:
    result = invoke("quarantine", "list", env={"COLUMNS": "40"})  # CliRunner's stdout is not a terminal
    assert result.exit_code == 0, result.output
    for item_id in quarantined:
        assert item_id in result.stdout
    assert LONG in result.stdout
    assert "…" not in result.stdout
    assert result.stderr == "3 item(s)\n"
    assert invoke("quarantine", "show", quarantined[0], "--format", "table", env={"COLUMNS": "40"}).stdout.count(LONG) == 2


def test_quarantine_list_formats_and_the_json_alias(quarantined: list[str]) -> None:
    as_json = invoke("quarantine", "list", "--format", "json")
    assert [QuarantineItem.model_validate(line).id for line in json_lines(as_json.stdout)] == quarantined
    assert as_json.stderr == ""  # machine formats: stdout only
    assert invoke("quarantine", "list", "--json").stdout == as_json.stdout  # the old flag, kept hidden
    assert "--json" not in invoke("quarantine", "list", "--help").stdout
    rows = csv_rows(invoke("quarantine", "list", "--format", "csv").stdout)
    assert [r["id"] for r in rows] == quarantined
    assert rows[1]["blocked_recipients"] == f"{LONG} cfo@tailspintoys.com"
    assert json.loads(invoke("quarantine", "show", quarantined[0]).stdout)["id"] == quarantined[0]


def test_purge_dry_run_lists_and_counts_and_deletes_nothing(quarantined: list[str]) -> None:
    listed = invoke("quarantine", "purge", "--older-than", "2025-02-01", "--dry-run")
    assert listed.exit_code == 0, listed.output
    assert all(item_id in listed.stdout for item_id in quarantined[:2])
    assert quarantined[2] not in listed.stdout
    assert "would purge 2 item(s) from before 2025-02-01; nothing was deleted" in listed.stdout
    as_json = invoke("quarantine", "purge", "--older-than", "2025-02-01", "--dry-run", "--format", "json")
    assert json_lines(as_json.stdout) == [{"id": quarantined[0], "day": "2025-01-02"}, {"id": quarantined[1], "day": "2025-01-20"}]
    assert "would purge 2 item(s)" in as_json.stderr
    assert stored_ids() == quarantined


def test_purge_says_how_many_before_asking(quarantined: list[str]) -> None:
    declined = invoke("quarantine", "purge", "--older-than", "2025-02-01", input="n\n")
    assert "Delete 2 quarantined item(s) from before 2025-02-01, released or not? [y/N]" in declined.stderr
    assert declined.exit_code == 1  # aborted
    assert stored_ids() == quarantined
    accepted = invoke("quarantine", "purge", "--older-than", "2025-02-01", "--format", "json", input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert json_lines(accepted.stdout) == [{"purged": 2, "before": "2025-02-01", "ids": quarantined[:2]}]
    assert stored_ids() == quarantined[2:]
    nothing = invoke("quarantine", "purge", "--older-than", "2025-02-01")  # nothing to delete: no question
    assert (nothing.exit_code, nothing.stdout) == (0, "purged 0 item(s)\n")


def test_items_released_before_reasons_existed_still_read() -> None:
    old = {
        **{k: v for k, v in _item("m", datetime(2025, 1, 2, tzinfo=UTC)).items() if k != "now"},
        "id": "20250102-0123456789abcdef0123",
        "quarantined_at": "2025-01-02T00:00:00Z",
        "released": {"by": "ops", "at": "2025-01-03T00:00:00Z", "action": "allow", "delivered_to": [LONG]},
    }
    item = QuarantineItem.model_validate_json(json.dumps(old))
    assert (item.released.by, item.released.reason) == ("ops", None)


# ---------------------------------------------------------------- directory against DynamoDB Local


def test_directory_import_reads_stdin_and_every_listing_parses(directory_table: str) -> None:
    env = {"DIRECTORY_TABLE": directory_table}
    imported = invoke("directory", "import", "-", "--format", "json", input=DIRECTORY.read_text(encoding="utf-8"), env=env)
    assert imported.exit_code == 0, imported.output
    [report] = json_lines(imported.stdout)
    assert (report["file"], report["changed"]["customers"]) == ("<stdin>", report["customers"])
    exported = json_lines(invoke("directory", "export", env=env).stdout)
    assert len(exported) == report["partners"] + report["customers"]
    stats = json_lines(invoke("directory", "stats", "--format", "json", env=env).stdout)
    assert [s["cloud"] for s in stats] == [c.value for c in Cloud]
    assert sum(s["customers"] for s in stats) == report["customers"]
    assert [r["cloud"] for r in csv_rows(invoke("directory", "stats", "--format", "csv", env=env).stdout)] == [c.value for c in Cloud]
    shown = invoke("directory", "show", "it@contoso.com", "--format", "json", env=env)
    lines = json_lines(shown.stdout)
    assert len(lines) == len(Cloud)
    [found] = [line for line in lines if line["cloud"] == "commercial"]
    assert (found["matched_by"], found["customer"]["partners"][0]["contacts"]) == ("domain", ["csp-desk@fabrikam.example"])
    missing = invoke("directory", "show", "nobody@elsewhere.example", "--format", "json", env=env)
    assert missing.exit_code == 1
    assert all(line["customer"] is None for line in json_lines(missing.stdout))


def test_an_invalid_file_on_stdin_is_reported_as_stdin(directory_table: str) -> None:
    bad = '{"kind": "partner", "cloud": "commercial"}\n'
    result = invoke("directory", "import", "-", "--table", directory_table, input=bad)
    assert result.exit_code == 1
    assert "<stdin>:1: partner_id: Field required" in result.stderr
    assert "in <stdin>; nothing was written" in result.stderr


# ---------------------------------------------------------------- installs anywhere


def test_a_non_editable_install_runs_outside_the_checkout(tmp_path: Path) -> None:
    """pip install --target from a copy of the sources (the checkout is left untouched), then run from elsewhere."""
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for part in ("layers/mailfilter/mailfilter", "cli/mailfilter_cli"):
        shutil.copytree(ROOT / part, source / part, ignore=ignore)
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / part, source / part)
    target = tmp_path / "site"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile", "--target", str(target), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(SAMPLE, elsewhere / "event.json")
    shutil.copy(DIRECTORY, elsewhere / "directory.jsonl")
    env = {**bare_environment(tmp_path), "PYTHONPATH": str(target)}

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(command, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return done

    where = run(sys.executable, "-c", "import mailfilter, mailfilter_cli; print(mailfilter.__file__); print(mailfilter_cli.__file__)")
    assert all(Path(line).is_relative_to(target) for line in where.stdout.splitlines())
    assert "Commands:" in run(sys.executable, "-m", "mailfilter_cli.main", "--help").stdout
    [verdict] = json_lines(run(str(target / "bin" / "mailfilter"), "explain", "event.json", "--directory", "directory.jsonl").stdout)
    assert verdict["message_id"] == "news-2025-01-azure-mixed"
    assert "valid:" in run(str(target / "bin" / "mailfilter"), "policy", "check").stdout  # the shipped policy is package data
    installed = run(str(target / "bin" / "mailfilter"), "--version").stdout.strip()
    assert installed == f"mailfilter (csp-mail-filter) {version('csp-mail-filter')}"
