"""The policy file is validated data: a table with a hole, a bad pattern or an unknown field is refused."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from mailfilter.policy.config import DEFAULT_POLICY_PATH, load_policy
from mailfilter.settings import PolicySettings
from mailfilter.vocabulary.errors import ConfigurationError, PolicyFileError
from mailfilter_cli.main import cli

DEFAULT_TEXT = DEFAULT_POLICY_PATH.read_text(encoding="utf-8")


def write(tmp_path, text: str):
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_policy_states_each_of_the_four_seed_rules():
    policy = load_policy()
    assert {rule.seed_rule for rule in policy.rules} >= {1, 2, 3, 4}


def test_a_table_that_leaves_a_cell_undecided_is_refused(tmp_path):
    last_rule = DEFAULT_TEXT.rindex("[[rules]]")
    assert 'id = "general-mail-via-partner"' in DEFAULT_TEXT[last_rule:]
    text = DEFAULT_TEXT[:last_rule]
    with pytest.raises(PolicyFileError, match='no rule with product = "any" decides general mail for csp-only customers'):
        load_policy(write(tmp_path, text))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("pattern = '(?i)\\bazure\\b'", "pattern = '(unclosed'"), "invalid regular expression"),
        (('mode = "enforce"', 'mode = "relaxed"'), "mode: Input should be 'enforce' or 'audit'"),
        (('default_cloud = "commercial"', 'default_cloud = "moon"'), "default_cloud"),
        (("[vendor]", "[vendor]\nsecret = 1"), "vendor.secret: Extra inputs are not permitted"),
        (("{partners} owns the billing", "{partner} owns the billing"), "unknown placeholder(s) ['partner']"),
        (('id = "no-csp-partner"', 'id = "not-in-directory"'), "rule ids must be unique"),
    ],
)
def test_invalid_policy_is_refused_with_the_field_and_problem(tmp_path, change, message):
    old, new = change
    assert old in DEFAULT_TEXT
    with pytest.raises(PolicyFileError) as caught:
        load_policy(write(tmp_path, DEFAULT_TEXT.replace(old, new, 1)))
    assert message in str(caught.value)


def test_broken_toml_names_the_file(tmp_path):
    path = write(tmp_path, "mode = ")
    with pytest.raises(PolicyFileError, match=f"{path}: not valid TOML"):
        load_policy(path)


def test_deployment_overrides_mode_and_default_cloud_from_the_environment():
    policy = PolicySettings.from_env({"MAILFILTER_MODE": "audit", "DEFAULT_CLOUD": "germany"}).load()
    assert (policy.mode.value, policy.default_cloud.value) == ("audit", "germany")


def test_an_invalid_environment_value_is_a_clear_start_up_error():
    with pytest.raises(ConfigurationError, match="DEFAULT_CLOUD"):
        PolicySettings.from_env({"DEFAULT_CLOUD": "mars"})


def test_policy_check_command_accepts_the_shipped_policy_and_refuses_a_broken_one(tmp_path):
    ok = CliRunner().invoke(cli, ["policy", "check"])
    assert ok.exit_code == 0, ok.output
    assert "subscription-owned-by-partner" in ok.output
    broken = CliRunner().invoke(cli, ["policy", "check", str(write(tmp_path, DEFAULT_TEXT.replace('mode = "enforce"', 'mode = "x"')))])
    assert broken.exit_code == 1
    assert "mode: Input should be 'enforce' or 'audit'" in broken.output
