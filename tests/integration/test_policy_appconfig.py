"""The policy without a deploy: read from AWS AppConfig, validated before it is accepted (docs/policy.md).

moto's AppConfig keeps what the operator writes (application, profile, hosted versions) but has
no environments, deployments or AppConfig Data API. `AppConfigData` below answers the data plane
(StartConfigurationSession, GetLatestConfiguration) for a real boto3 `appconfigdata` client,
whose parameters botocore validates against the API model, with the hosted version moto holds,
the way AppConfig does: full content once, then empty content while nothing changed. It counts
every call, and can be made unreachable.
"""

from __future__ import annotations

import base64
import io
import time
from collections import Counter
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError
from click.testing import CliRunner
from moto import mock_aws

from mailfilter.aws import clients
from mailfilter.aws.policy_source import POLICY_REFUSED, POLICY_UNAVAILABLE, AppConfigPolicy, in_force, policy_source, validate_version
from mailfilter.engine import evaluate
from mailfilter.policy.config import DEFAULT_POLICY_PATH
from mailfilter.settings import PolicySettings
from mailfilter.vocabulary.errors import ConfigurationError, PolicyFileError, PolicyUnavailable
from mailfilter.vocabulary.model import Action
from mailfilter_cli.main import cli
from mailfilter_testkit.directory_samples import CSP_ONLY, directory_in_every_cloud, outbound
from mailfilter_testkit.outbound_support import LambdaContext, load_function, sample_event
from mailfilter_testkit.paths import ROOT

DEFAULT_TEXT = DEFAULT_POLICY_PATH.read_text(encoding="utf-8")
ENVIRONMENT = "production"


def with_rule_action(rule_id: str, action: str) -> str:
    """The shipped policy with one rule's action changed."""
    start = DEFAULT_TEXT.index(f'id = "{rule_id}"')
    end = DEFAULT_TEXT.index("action = ", start)
    line_end = DEFAULT_TEXT.index("\n", end)
    return DEFAULT_TEXT[:end] + f'action = "{action}"' + DEFAULT_TEXT[line_end:]


# Product mail to a CSP-only customer: blocked by the shipped policy, rerouted by this one.
REROUTE_PRODUCT_MAIL = with_rule_action("product-mail-for-csp-customer", "reroute")
INVALID = DEFAULT_TEXT.replace('mode = "enforce"', 'mode = "relaxed"', 1)


class AppConfigData:
    """AppConfig's data plane over moto's AppConfig control plane, for one application/environment/profile."""

    def __init__(self, client: Any) -> None:
        self.control = boto3.client("appconfig")
        self.application = self.control.create_application(Name="csp-mail-filter")["Id"]
        self.profile = self.control.create_configuration_profile(
            ApplicationId=self.application, Name="policy", LocationUri="hosted", Type="AWS.Freeform"
        )["Id"]
        self.deployed: int | None = None
        self.unreachable = False
        self.calls: Counter[str] = Counter()
        self._tokens: dict[str, int | None] = {}  # each token once: the version its holder already has
        self._params: dict[str, Any] = {}
        client.meta.events.register("before-parameter-build.appconfigdata", self._capture)
        client.meta.events.register("before-call.appconfigdata", self._answer)

    def deploy(self, content: str) -> int:
        """create-hosted-configuration-version, then a deployment of it (all at once)."""
        version = self.control.create_hosted_configuration_version(
            ApplicationId=self.application, ConfigurationProfileId=self.profile, Content=content.encode(), ContentType="application/toml"
        )["VersionNumber"]
        self.deployed = version
        return version

    def environ(self, max_age: int = 60) -> dict[str, str]:
        return {
            "POLICY_APPCONFIG_APPLICATION": self.application,
            "POLICY_APPCONFIG_ENVIRONMENT": ENVIRONMENT,
            "POLICY_APPCONFIG_PROFILE": self.profile,
            "POLICY_MAX_AGE_SECONDS": str(max_age),
        }

    def _capture(self, params: dict[str, Any], **_: Any) -> None:
        self._params = dict(params)

    def _answer(self, model: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        self.calls[model.name] += 1
        if self.unreachable:
            raise EndpointConnectionError(endpoint_url="https://appconfigdata.us-east-1.amazonaws.com")
        if model.name == "StartConfigurationSession":
            keys = ("ApplicationIdentifier", "EnvironmentIdentifier", "ConfigurationProfileIdentifier")
            assert tuple(self._params[k] for k in keys) == (self.application, ENVIRONMENT, self.profile)
            return self._ok({"InitialConfigurationToken": self._token(None)})
        has = self._tokens.pop(self._params["ConfigurationToken"])  # a spent token is a KeyError, as AppConfig refuses it
        content = b""
        if self.deployed is not None and has != self.deployed:
            hosted = self.control.get_hosted_configuration_version(
                ApplicationId=self.application, ConfigurationProfileId=self.profile, VersionNumber=self.deployed
            )
            content = hosted["Content"].read()
        token = self._token(self.deployed)
        return self._ok({"Configuration": io.BytesIO(content), "NextPollConfigurationToken": token, "NextPollIntervalInSeconds": 60})

    def _token(self, version: int | None) -> str:
        token = f"token-{len(self._tokens)}-{time.monotonic_ns()}"
        self._tokens[token] = version
        return token

    @staticmethod
    def _ok(parsed: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
        return AWSResponse("https://appconfigdata.us-east-1.amazonaws.com", 200, {}, None), parsed


class Recorded:
    """A Logger's info/warning/error, and the metrics reported."""

    def __init__(self) -> None:
        self.logs: list[tuple[str, str, dict[str, Any]]] = []
        self.metrics: list[str] = []

    def info(self, msg: str, *_: Any, extra: dict[str, Any] | None = None, **__: Any) -> None:
        self.logs.append(("info", msg, extra or {}))

    def warning(self, msg: str, *_: Any, extra: dict[str, Any] | None = None, **__: Any) -> None:
        self.logs.append(("warning", msg, extra or {}))

    def error(self, msg: str, *_: Any, extra: dict[str, Any] | None = None, **__: Any) -> None:
        self.logs.append(("error", msg, extra or {}))


@pytest.fixture
def appconfig() -> Any:
    with mock_aws():
        yield AppConfigData(boto3.client("appconfigdata"))


def source(appconfig: AppConfigData, recorded: Recorded, *, max_age: int = 60, clock: Any = time.monotonic) -> AppConfigPolicy:
    settings = PolicySettings.from_env(appconfig.environ(max_age))
    client = boto3.client("appconfigdata")
    client.meta.events.register("before-parameter-build.appconfigdata", appconfig._capture)
    client.meta.events.register("before-call.appconfigdata", appconfig._answer)
    return AppConfigPolicy(settings, client=client, logger=recorded, report=recorded.metrics.append, clock=clock)


def decide_product_mail_to_csp_only(policy: Any) -> Action:
    (decision,) = evaluate(outbound(CSP_ONLY, category="product", product="azure"), directory_in_every_cloud(), policy).decisions
    return decision.action


# ---------------------------------------------------------------- reading and deciding


def test_the_policy_deployed_in_appconfig_decides_the_mail(appconfig):
    appconfig.deploy(REROUTE_PRODUCT_MAIL)
    policy = source(appconfig, Recorded()).current()
    assert decide_product_mail_to_csp_only(policy) is Action.REROUTE
    assert decide_product_mail_to_csp_only(PolicySettings().load()) is Action.BLOCK  # the layer's, for contrast


def test_the_deployments_mode_and_default_cloud_override_appconfigs_policy_as_they_do_the_files(appconfig):
    appconfig.deploy(DEFAULT_TEXT)
    settings = PolicySettings.from_env({**appconfig.environ(), "MAILFILTER_MODE": "audit", "DEFAULT_CLOUD": "germany"})
    client = boto3.client("appconfigdata")
    client.meta.events.register("before-parameter-build.appconfigdata", appconfig._capture)
    client.meta.events.register("before-call.appconfigdata", appconfig._answer)
    policy = AppConfigPolicy(settings, client=client, report=lambda _: None).current()
    assert (policy.mode.value, policy.default_cloud.value) == ("audit", "germany")


def test_a_read_within_the_max_age_answers_from_the_cache_without_calling_appconfig(appconfig):
    appconfig.deploy(DEFAULT_TEXT)
    policies = source(appconfig, Recorded(), max_age=60)
    first = policies.current()
    for _ in range(5):
        assert policies.current() is first
    assert appconfig.calls == {"StartConfigurationSession": 1, "GetLatestConfiguration": 1}


def test_after_the_max_age_appconfig_is_asked_again_and_a_new_version_takes_effect(appconfig):
    appconfig.deploy(DEFAULT_TEXT)
    recorded = Recorded()
    policies = source(appconfig, recorded, max_age=1)
    assert decide_product_mail_to_csp_only(policies.current()) is Action.BLOCK
    appconfig.deploy(REROUTE_PRODUCT_MAIL)
    assert decide_product_mail_to_csp_only(policies.current()) is Action.BLOCK  # within the max age: the cached one
    time.sleep(1.1)
    assert decide_product_mail_to_csp_only(policies.current()) is Action.REROUTE
    unchanged = policies.current()
    time.sleep(1.1)
    assert policies.current() is unchanged  # AppConfig answered "no change" (empty content): nothing parsed again
    assert appconfig.calls == {"StartConfigurationSession": 1, "GetLatestConfiguration": 3}
    assert [msg for _, msg, _ in recorded.logs] == ["policy from AppConfig accepted", "policy from AppConfig changed and accepted"]


# ---------------------------------------------------------------- refused and unreachable


def test_an_invalid_policy_is_refused_the_last_good_stays_in_force_and_policy_refused_is_counted(appconfig):
    appconfig.deploy(REROUTE_PRODUCT_MAIL)
    recorded = Recorded()
    policies = source(appconfig, recorded, max_age=1)
    good = policies.current()
    appconfig.deploy(INVALID)
    time.sleep(1.1)
    assert policies.current() is good
    assert recorded.metrics == [POLICY_REFUSED]
    level, message, extra = recorded.logs[-1]
    assert (level, message) == ("error", "policy from AppConfig refused: the last good policy stays in force")
    assert "mode: Input should be 'enforce' or 'audit'" in extra["reason"]
    assert f"AppConfig {appconfig.application}/{ENVIRONMENT}/{appconfig.profile}" in extra["reason"]
    # Still the latest deployed: counted again at the next refresh (the alarm stays in ALARM), logged once.
    time.sleep(1.1)
    assert policies.current() is good
    assert recorded.metrics == [POLICY_REFUSED, POLICY_REFUSED]
    assert [level for level, _, _ in recorded.logs].count("error") == 1
    # A valid version clears it.
    appconfig.deploy(DEFAULT_TEXT)
    time.sleep(1.1)
    assert decide_product_mail_to_csp_only(policies.current()) is Action.BLOCK


def test_appconfig_unreachable_at_a_refresh_keeps_the_last_good_policy_and_asks_again_only_after_the_max_age(appconfig):
    appconfig.deploy(REROUTE_PRODUCT_MAIL)
    now = [1000.0]
    recorded = Recorded()
    policies = source(appconfig, recorded, max_age=1, clock=lambda: now[0])
    good = policies.current()
    appconfig.unreachable = True
    time.sleep(1.1)  # powertools' cache expires
    now[0] += 2
    assert policies.current() is good
    assert recorded.metrics == [POLICY_UNAVAILABLE]
    assert recorded.logs[-1][:2] == ("warning", "policy from AppConfig unreadable: the last good policy stays in force")
    calls = sum(appconfig.calls.values())
    assert policies.current() is good  # within the quiet period AppConfig is not asked
    assert sum(appconfig.calls.values()) == calls
    appconfig.unreachable = False
    now[0] += 2
    assert policies.current() is good  # a new session: the same content, accepted without a second "accepted" log
    assert appconfig.calls["StartConfigurationSession"] == 2


def test_appconfig_unreachable_at_a_cold_start_decides_nothing(appconfig):
    appconfig.deploy(DEFAULT_TEXT)
    appconfig.unreachable = True
    recorded = Recorded()
    with pytest.raises(PolicyUnavailable, match="cannot read the policy"):
        source(appconfig, recorded).current()
    assert recorded.metrics == [POLICY_UNAVAILABLE]
    assert recorded.logs[-1][:2] == ("error", "policy from AppConfig unreadable and none read before: nothing is decided")


def test_a_refused_policy_at_a_cold_start_decides_nothing_rather_than_fall_back_to_the_layers(appconfig):
    appconfig.deploy(INVALID)
    recorded = Recorded()
    with pytest.raises(PolicyUnavailable, match="mode: Input should be 'enforce' or 'audit'"):
        source(appconfig, recorded).current()
    assert recorded.metrics == [POLICY_REFUSED]
    assert recorded.logs[-1][1] == "policy from AppConfig refused: the layer's policy is not used; nothing is decided"


def test_nothing_deployed_yet_is_no_policy_at_all(appconfig):
    with pytest.raises(PolicyUnavailable):
        source(appconfig, Recorded()).current()


# ---------------------------------------------------------------- not configured


def test_without_appconfig_settings_the_layers_policy_stays_exactly_as_before():
    # As the template sets them when PolicyFromAppConfig is off.
    empty = {"POLICY_APPCONFIG_APPLICATION": "", "POLICY_APPCONFIG_ENVIRONMENT": "", "POLICY_APPCONFIG_PROFILE": ""}
    settings = PolicySettings.from_env(empty)
    assert policy_source(settings) is None

    class Built:
        policy = settings.load()

    built = Built()
    assert in_force(built, None) is built


def test_appconfig_names_are_set_together_or_not_at_all():
    with pytest.raises(ConfigurationError, match="set together or not at all"):
        PolicySettings.from_env({"POLICY_APPCONFIG_APPLICATION": "app"})


# ---------------------------------------------------------------- the functions


@pytest.fixture
def gateway_with_appconfig(outbound: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The real gateway handler, its environment naming AppConfig, the data plane answered as above."""
    data = AppConfigData(clients.client("appconfigdata"))
    for name, value in data.environ().items():
        monkeypatch.setenv(name, value)
    return data, load_function("outbound_gateway")


def test_the_gateway_decides_each_batch_under_the_policy_deployed_in_appconfig(outbound, gateway_with_appconfig):
    data, gateway = gateway_with_appconfig
    data.deploy(REROUTE_PRODUCT_MAIL)
    response = gateway.lambda_handler(sample_event("outbound-product-to-csp-only.json"), LambdaContext())
    assert response == {"batchItemFailures": []}
    (record,) = [r for r in outbound.records("news-2025-01-copilot-tailspin") if r["kind"] == "decision"]
    assert (record["action"], record["rule"]) == ("reroute", "product-mail-for-csp-customer")
    assert [s.envelope for s in outbound.sent()] == [["csp-desk@fabrikam.example"]]


def test_the_gateway_with_no_policy_at_all_returns_the_whole_batch_to_its_queue(outbound, gateway_with_appconfig):
    data, gateway = gateway_with_appconfig
    data.deploy(DEFAULT_TEXT)
    data.unreachable = True
    with pytest.raises(PolicyUnavailable):
        gateway.lambda_handler(sample_event("outbound-product-to-csp-only.json"), LambdaContext())
    assert outbound.records("news-2025-01-copilot-tailspin") == []
    assert outbound.sent() == []


@pytest.fixture
def inbound_with_appconfig(monkeypatch, dynamodb_local, directory_table, decisions_table) -> Any:
    from mailfilter_testkit.inbound_stack import inbound_stack  # noqa: PLC0415

    for stack in inbound_stack(monkeypatch, dynamodb_local, directory_table, decisions_table):
        data = AppConfigData(clients.client("appconfigdata"))
        for name, value in data.environ().items():
            monkeypatch.setenv(name, value)
        yield data, stack


def test_the_inbound_filter_with_no_policy_at_all_defers_the_message_for_release(inbound_with_appconfig):
    from mailfilter_testkit.inbound_stack import sample  # noqa: PLC0415

    data, stack = inbound_with_appconfig
    data.deploy(DEFAULT_TEXT)
    data.unreachable = True
    event, raw = sample("csp-customer-to-support")
    ses_id = event["Records"][0]["ses"]["mail"]["messageId"]
    stack.store(ses_id, raw)
    assert stack.invoke(event) == {"disposition": "STOP_RULE"}  # not CONTINUE: nothing reaches the desk undecided
    assert stack.sent() == []
    (record,) = stack.recorded(ses_id)
    assert record["kind"] == "deferred"
    assert "cannot read the policy" in record["error"]
    (item,) = stack.quarantined()
    assert item["request"]["kind"] == "deferred"
    # AppConfig back: the next message is decided under its policy again.
    data.unreachable = False
    event, raw = sample("csp-customer-to-billing")
    stack.store(event["Records"][0]["ses"]["mail"]["messageId"], raw)
    assert stack.invoke(event) == {"disposition": "STOP_RULE"}
    assert [envelope for envelope, _, _ in stack.sent()] == [["csp-desk@fabrikam.example"]]


# ---------------------------------------------------------------- validation: CLI, CI and AppConfig's validator

SHIPPED_POLICIES = sorted({DEFAULT_POLICY_PATH, *ROOT.glob("events/**/*.toml"), *ROOT.glob("docs/**/*.toml")})


@pytest.mark.parametrize("path", SHIPPED_POLICIES, ids=[str(p.relative_to(ROOT)) for p in SHIPPED_POLICIES])
def test_every_shipped_policy_file_passes_policy_check(path):
    result = CliRunner().invoke(cli, ["policy", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert "valid:" in result.output


def test_policy_check_refuses_a_bad_file_with_every_problem_and_exit_status_1(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text(INVALID.replace('default_cloud = "commercial"', 'default_cloud = "moon"', 1), encoding="utf-8")
    result = CliRunner().invoke(cli, ["policy", "check", str(path)])
    assert result.exit_code == 1
    assert f"{path}: invalid policy" in result.output
    assert "mode: Input should be 'enforce' or 'audit'" in result.output
    assert "default_cloud: Input should be 'commercial', 'usgov' or 'germany'" in result.output


def validator_event(content: str) -> dict[str, Any]:
    return {
        "applicationId": "app",
        "configurationProfileId": "profile",
        "configurationVersion": "7",
        "content": base64.b64encode(content.encode()).decode(),
        "uri": "hosted",
    }


def test_appconfigs_validator_accepts_the_shipped_policy_and_refuses_a_broken_one_with_its_problems():
    validator = load_function("policy_validator")
    assert validator.lambda_handler(validator_event(DEFAULT_TEXT), LambdaContext())["valid"] is True
    with pytest.raises(PolicyFileError) as refused:
        validator.lambda_handler(validator_event(INVALID), LambdaContext())
    assert "AppConfig configuration version 7: invalid policy" in str(refused.value)
    assert "mode: Input should be 'enforce' or 'audit'" in str(refused.value)
    with pytest.raises(PolicyFileError, match="no base64 content"):
        validate_version({"configurationVersion": "8", "content": "not base64!"})
