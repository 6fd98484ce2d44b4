"""The on-disk key index gives the validator exactly the answers its in-memory dicts give."""

from __future__ import annotations

import json

from mailfilter.directory.load import DirectoryValidator
from mailfilter.vocabulary.model import Cloud
from mailfilter_cli.directory_keys import DiskKeyIndex

C, GOV = Cloud.COMMERCIAL, Cloud.USGOV

LINES = [
    {"kind": "partner", "cloud": "commercial", "partner_id": "alpha", "name": "Alpha"},
    {"kind": "partner", "cloud": "commercial", "partner_id": "alpha", "name": "Alpha again"},  # duplicate partner
    {"kind": "customer", "cloud": "commercial", "tenant_id": "t1", "name": "One", "domains": ["one.example"], "addresses": ["a@x.example"]},
    {"kind": "customer", "cloud": "commercial", "tenant_id": "t1", "name": "Dup", "domains": ["dup.example"]},  # duplicate tenant
    {"kind": "customer", "cloud": "commercial", "tenant_id": "t3", "name": "Three", "domains": ["one.example"]},  # domain taken
    {"kind": "customer", "cloud": "commercial", "tenant_id": "t4", "name": "Four", "addresses": ["a@x.example"]},  # address taken
    {
        "kind": "customer",
        "cloud": "commercial",
        "tenant_id": "t5",
        "name": "Five",
        "domains": ["five.example"],
        "csp": [{"partner_id": "ghost"}],
    },
    {"kind": "customer", "cloud": "usgov", "tenant_id": "t1", "name": "Gov", "domains": ["one.example"], "csp": [{"partner_id": "alpha"}]},
]


def validate(validator: DirectoryValidator) -> list[str]:
    for number, row in enumerate(LINES, start=1):
        validator.check(number, json.dumps(row))
    return [str(issue) for issue in validator.finish()]


def test_disk_index_reports_the_same_problems_as_memory() -> None:
    in_memory = validate(DirectoryValidator("d.jsonl"))
    with DiskKeyIndex() as index:
        on_disk = validate(DirectoryValidator("d.jsonl", index=index))
    assert on_disk == in_memory
    assert len(in_memory) == 6  # 2 duplicates, 2 claims, ghost in commercial, alpha unknown in usgov


def test_disk_index_answers_which_tenant_claims_each_entry() -> None:
    with DiskKeyIndex() as index:
        validator = DirectoryValidator("d.jsonl", index=index)
        validate(validator)
        assert validator.claimant(C, "domain", "one.example") == "t1"
        assert validator.claimant(C, "address", "a@x.example") == "t1"
        assert validator.claimant(GOV, "domain", "one.example") == "t1"
        assert validator.claimant(GOV, "domain", "five.example") is None
        assert validator.defines_tenant(C, "t5")
        assert not validator.defines_tenant(GOV, "t5")
        assert validator.defines_partner(C, "alpha")
        assert not validator.defines_partner(GOV, "alpha")
