"""`mailfilter directory` against DynamoDB Local: import, re-import, prune, dry run, export, show, stats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from mailfilter.aws.directory_table import DynamoDirectory
from mailfilter.directory.load import dump_record, read_directory
from mailfilter.vocabulary.model import Cloud
from mailfilter_cli.directory_import import import_directory
from mailfilter_cli.main import cli
from mailfilter_testkit.paths import EVENTS

C = Cloud.COMMERCIAL

PARTNERS = [
    {"kind": "partner", "cloud": "commercial", "partner_id": "alpha", "name": "Alpha", "contacts": ["desk@alpha.example"]},
    {"kind": "partner", "cloud": "commercial", "partner_id": "beta", "name": "Beta", "contacts": ["ops@beta.example"]},
]
CUSTOMERS = [
    {"kind": "customer", "cloud": "commercial", "tenant_id": "contoso", "name": "Contoso", "domains": ["contoso.com"],
     "addresses": ["ceo@gmail.example"], "csp": [{"partner_id": "alpha", "products": ["azure"]}]},
    {"kind": "customer", "cloud": "commercial", "tenant_id": "tailspin", "name": "Tailspin", "domains": ["tailspin.example"],
     "csp": [{"partner_id": "beta"}]},
    {"kind": "customer", "cloud": "usgov", "tenant_id": "contoso-gov", "name": "Contoso Gov", "domains": ["contoso.com"],
     "direct_products": ["azure"]},
]  # fmt: skip


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def run(table: str, *args: str) -> Any:
    return CliRunner().invoke(cli, ["directory", *args], env={"DIRECTORY_TABLE": table}, catch_exceptions=False)


def items(table: str) -> list[dict[str, Any]]:
    pages = boto3.client("dynamodb").get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    return sorted((item for page in pages for item in page["Items"]), key=lambda item: (item["pk"]["S"], item["sk"]["S"]))


def tenant_of(table: str, address: str, cloud: Cloud = C) -> str | None:
    match = DynamoDirectory(table, cache_ttl_seconds=0).lookup(cloud, [address])[address]
    return match.customer.tenant_id if match else None


@pytest.fixture
def directory_file(tmp_path: Path) -> Path:
    return write(tmp_path / "directory.jsonl", PARTNERS + CUSTOMERS)


def test_import_then_export_round_trips(directory_table: str, directory_file: Path, tmp_path: Path) -> None:
    assert run(directory_table, "import", str(directory_file)).exit_code == 0
    exported = run(directory_table, "export", "-o", str(tmp_path / "out.jsonl"))
    assert exported.exit_code == 0
    lines = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    assert sorted(lines) == sorted(dump_record(record) for record in read_directory(directory_file))
    assert [json.loads(line)["kind"] for line in lines] == ["partner"] * 2 + ["customer"] * 3  # partners first


def test_imported_customers_resolve_with_their_partners(directory_table: str, directory_file: Path) -> None:
    run(directory_table, "import", str(directory_file))
    assert tenant_of(directory_table, "it@mail.contoso.com") == "contoso"
    assert tenant_of(directory_table, "it@contoso.com", Cloud.USGOV) == "contoso-gov"
    assert tenant_of(directory_table, "ceo@gmail.example") == "contoso"


def test_reimporting_the_same_file_writes_nothing(directory_table: str, directory_file: Path) -> None:
    import_directory(directory_file, directory_table)
    before = items(directory_table)
    report = import_directory(directory_file, directory_table)
    assert report.requests["BatchWriteItem"] == 0
    assert (sum(report.changed.values()), report.unchanged["customers"], report.unchanged["partners"]) == (0, 3, 2)
    assert items(directory_table) == before


def test_a_customer_whose_domains_changed_loses_its_old_entries(directory_table: str, tmp_path: Path) -> None:
    import_directory(write(tmp_path / "v1.jsonl", PARTNERS + CUSTOMERS), directory_table)
    moved = [{**CUSTOMERS[0], "domains": ["contoso.net"]}, *CUSTOMERS[1:]]
    report = import_directory(write(tmp_path / "v2.jsonl", PARTNERS + moved), directory_table)
    assert report.deleted["entries"] == 1
    assert tenant_of(directory_table, "it@contoso.com") is None
    assert tenant_of(directory_table, "it@contoso.net") == "contoso"


def test_a_domain_moving_to_another_customer_is_not_deleted(directory_table: str, tmp_path: Path) -> None:
    import_directory(write(tmp_path / "v1.jsonl", PARTNERS + CUSTOMERS), directory_table)
    moved = [{**CUSTOMERS[0], "domains": ["contoso.net"]}, {**CUSTOMERS[1], "domains": ["tailspin.example", "contoso.com"]}, CUSTOMERS[2]]
    import_directory(write(tmp_path / "v2.jsonl", PARTNERS + moved), directory_table)
    assert tenant_of(directory_table, "it@contoso.com") == "tailspin"


def test_a_partner_change_rewrites_its_customers_lookup_items(directory_table: str, tmp_path: Path) -> None:
    import_directory(write(tmp_path / "v1.jsonl", PARTNERS + CUSTOMERS), directory_table)
    renamed = [{**PARTNERS[0], "contacts": ["new-desk@alpha.example"]}, PARTNERS[1]]
    report = import_directory(write(tmp_path / "v2.jsonl", renamed + CUSTOMERS), directory_table)
    assert (report.changed["partners"], report.changed["customers"]) == (1, 1)
    match = DynamoDirectory(directory_table).lookup(C, ["it@contoso.com"])["it@contoso.com"]
    assert match.customer.partners[0].contacts == ("new-desk@alpha.example",)


def test_prune_removes_customers_and_partners_no_longer_in_the_file(directory_table: str, tmp_path: Path) -> None:
    import_directory(write(tmp_path / "v1.jsonl", PARTNERS + CUSTOMERS), directory_table)
    smaller = write(tmp_path / "v2.jsonl", [PARTNERS[0], CUSTOMERS[0], CUSTOMERS[2]])
    import_directory(smaller, directory_table)
    assert tenant_of(directory_table, "it@tailspin.example") == "tailspin"  # without --prune, nothing is removed
    result = run(directory_table, "import", str(smaller), "--prune")
    assert result.exit_code == 0
    assert "1 customers and 1 partners" in result.stdout
    assert tenant_of(directory_table, "it@tailspin.example") is None
    exported = run(directory_table, "export").stdout.splitlines()
    assert sorted(exported) == sorted(dump_record(record) for record in read_directory(smaller))


def test_dry_run_counts_changes_and_writes_nothing(directory_table: str, directory_file: Path) -> None:
    result = run(directory_table, "import", str(directory_file), "--dry-run")
    assert result.exit_code == 0
    assert "would write 2 partners and 3 customers" in result.stdout
    assert items(directory_table) == []


def test_an_invalid_file_lists_every_problem_and_writes_nothing(directory_table: str, tmp_path: Path) -> None:
    bad = write(
        tmp_path / "bad.jsonl",
        [PARTNERS[0], {**CUSTOMERS[0], "csp": [{"partner_id": "ghost"}]}, {**CUSTOMERS[1], "domains": ["not a domain"]}],
    )
    with bad.open("a", encoding="utf-8") as handle:
        handle.write("{not json\n")
    result = run(directory_table, "import", str(bad))
    assert result.exit_code == 1
    assert f"{bad}:2: csp.0.partner_id: unknown partner 'ghost' in cloud commercial" in result.stderr
    assert f"{bad}:3: domains.0:" in result.stderr
    assert f"{bad}:4: (line): not valid JSON" in result.stderr
    assert "3 problems" in result.stderr
    assert "nothing was written" in result.stderr
    assert items(directory_table) == []


def test_show_names_the_customer_the_matching_entry_and_the_partners(directory_table: str, directory_file: Path) -> None:
    run(directory_table, "import", str(directory_file))
    result = run(directory_table, "show", "IT+x@Mail.Contoso.com", "--cloud", "commercial")
    assert result.exit_code == 0
    assert "Contoso (tenant contoso), matched by domain entry contoso.com" in result.stdout
    assert "desk@alpha.example" in result.stdout


def test_show_of_an_unknown_address_fails(directory_table: str, directory_file: Path) -> None:
    run(directory_table, "import", str(directory_file))
    result = run(directory_table, "show", "someone@elsewhere.example")
    assert result.exit_code == 1
    assert "no customer in any cloud" in result.stdout


def test_stats_count_partners_customers_and_entries_per_cloud(directory_table: str, directory_file: Path) -> None:
    run(directory_table, "import", str(directory_file))
    rows = {line.split("│")[1].strip(): line for line in run(directory_table, "stats").stdout.splitlines() if line.count("│") > 3}
    assert [cell.strip() for cell in rows["commercial"].split("│")[2:7]] == ["2", "2", "2", "1", "2"]
    assert [cell.strip() for cell in rows["usgov"].split("│")[2:7]] == ["0", "1", "0", "0", "1"]


def test_a_table_name_is_required(directory_file: Path) -> None:
    result = CliRunner().invoke(cli, ["directory", "import", str(directory_file)], env={"DIRECTORY_TABLE": ""})
    assert result.exit_code == 2
    assert "pass --table, set DIRECTORY_TABLE" in result.stderr


def test_explain_reads_the_table_and_decides_exactly_as_with_the_file(directory_table: str) -> None:
    events = EVENTS
    import_directory(events / "directory.jsonl", directory_table)
    decided = 0
    for sample in sorted(events.glob("*.json")):
        from_file = CliRunner().invoke(
            cli, ["explain", str(sample), "--directory", str(events / "directory.jsonl")], env={"DIRECTORY_TABLE": ""}
        )
        from_table = CliRunner().invoke(cli, ["explain", str(sample)], env={"DIRECTORY_TABLE": directory_table})
        assert (from_table.exit_code, from_table.stdout) == (from_file.exit_code, from_file.stdout), sample.name
        decided += from_file.exit_code == 0
    assert decided >= 5
