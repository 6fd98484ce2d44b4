"""The policy in force, read per invocation: from AWS AppConfig when the deployment says so.

Without POLICY_APPCONFIG_* in the environment there is no source (`policy_source` returns
None) and the functions keep the policy they were built with, the layer's file, exactly
as before. With them, `AppConfigPolicy.current()` is called at the start of every
invocation and answers from powertools' Parameters cache (`AppConfigProvider`, which calls
the AppConfig Data API, StartConfigurationSession then GetLatestConfiguration) until
POLICY_MAX_AGE_SECONDS have passed; only then does it ask AppConfig again.

What AppConfig holds is accepted only after the same validation as the layer's file and
`mailfilter policy check` (`mailfilter.policy.config.parse_policy`):

- a policy that does not validate is refused: the last good one stays in force, the log
  says why (every problem, with its key), and the metric PolicyRefused counts each
  invocation that runs while a refused policy is the latest deployed, so its alarm stays
  in ALARM until a valid policy is deployed;
- AppConfig unreachable at a refresh: the last good policy stays in force, the log says
  so, PolicyUnavailable is counted, and AppConfig is not asked again for max-age seconds;
- no good policy at all (a cold start with AppConfig unreachable, nothing deployed, or a
  refused policy): `PolicyUnavailable` is raised. The functions then decide nothing: the
  gateway's batch returns to its queue, the inbound filter defers the message into
  quarantine, the audit's event is retried. Falling back to the layer's file would decide
  mail under a policy the operator replaced, which may be the more permissive one
  (docs/policy.md, "Changing the policy without a deploy").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from mailfilter.aws import clients
from mailfilter.policy.config import Policy, parse_policy
from mailfilter.ports import Log, PolicySource
from mailfilter.settings import PolicySettings
from mailfilter.vocabulary.errors import PolicyFileError, PolicyUnavailable

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import AppConfigProvider

POLICY_REFUSED = "PolicyRefused"
POLICY_UNAVAILABLE = "PolicyUnavailable"

Report = Callable[[str], None]


def report(name: str) -> None:
    """One occurrence as a CloudWatch metric (EMF), with powertools' service dimension only."""
    with single_metric(name=name, unit=MetricUnit.Count, value=1):
        pass


class AppConfigPolicy:
    """The policy deployed to one AppConfig application/environment/profile, validated, cached for max-age seconds."""

    def __init__(
        self,
        settings: PolicySettings,
        *,
        client: Any = None,
        logger: Log | None = None,
        report: Report = report,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not settings.from_appconfig:
            raise ValueError("the POLICY_APPCONFIG_* settings are not set")
        self.settings = settings
        self.application = str(settings.policy_appconfig_application)
        self.environment = str(settings.policy_appconfig_environment)
        self.profile = str(settings.policy_appconfig_profile)
        self.max_age = settings.policy_max_age_seconds
        self.label = f"AppConfig {self.application}/{self.environment}/{self.profile}"
        self._client = client
        self._logger = logger
        self._report = report
        self._clock = clock
        self._provider = self._new_provider()
        self._good: Policy | None = None
        self._good_content: bytes | None = None
        self._refused: tuple[bytes, str] | None = None  # the content refused last, and why
        self._quiet_until = 0.0  # after a failed read, AppConfig is not asked again before this

    def _new_provider(self) -> AppConfigProvider:
        # Imported only where AppConfig is configured: with it off, the handlers import nothing more than before.
        from aws_lambda_powertools.utilities.parameters import AppConfigProvider  # noqa: PLC0415

        client = self._client if self._client is not None else clients.client("appconfigdata")
        return AppConfigProvider(environment=self.environment, application=self.application, boto3_client=client)

    def current(self) -> Policy:
        """The policy in force now; raises `PolicyUnavailable` when there has never been a good one."""
        if self._good is not None and self._clock() < self._quiet_until:
            return self._good
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError  # noqa: PLC0415 - loaded with the provider

        try:
            content = self._provider.get(self.profile, max_age=self.max_age)
        except GetParameterError as error:
            return self._unreachable(str(error))
        if not isinstance(content, bytes):  # powertools returns bytes without a transform
            content = str(content).encode("utf-8")
        if content is self._good_content or content == self._good_content:
            return self._in_force()
        if self._refused is not None and content == self._refused[0]:
            self._report(POLICY_REFUSED)
            return self._in_force(self._refused[1])
        return self._accept(content)

    def _accept(self, content: bytes) -> Policy:
        digest = hashlib.sha256(content).hexdigest()[:12]
        try:
            policy = self.settings.overridden(parse_policy(content, f"{self.label} (sha256 {digest})"))
        except PolicyFileError as error:
            self._refused = (content, str(error))
            self._report(POLICY_REFUSED)
            kept = "the layer's policy is not used; nothing is decided" if self._good is None else "the last good policy stays in force"
            self._log("error", f"policy from AppConfig refused: {kept}", reason=str(error), sha256=digest)
            return self._in_force(str(error))
        first = self._good is None
        self._good, self._good_content, self._refused = policy, content, None
        self._log(
            "info",
            "policy from AppConfig accepted" if first else "policy from AppConfig changed and accepted",
            sha256=digest,
            rules=len(policy.rules),
            mode=policy.mode.value,
        )
        return policy

    def _unreachable(self, error: str) -> Policy:
        self._report(POLICY_UNAVAILABLE)
        self._quiet_until = self._clock() + self.max_age
        # A new session next time: a failed call may have left the provider a spent or expired token.
        self._provider = self._new_provider()
        if self._good is None:
            self._log("error", "policy from AppConfig unreadable and none read before: nothing is decided", reason=error)
            raise PolicyUnavailable(f"{self.label}: cannot read the policy: {error}")
        self._log("warning", "policy from AppConfig unreadable: the last good policy stays in force", reason=error)
        return self._good

    def _in_force(self, refused: str | None = None) -> Policy:
        if self._good is None:
            raise PolicyUnavailable(refused or f"{self.label}: no policy read yet")
        return self._good

    def _log(self, level: str, text: str, **extra: Any) -> None:
        if self._logger is not None:
            getattr(self._logger, level)(text, extra={"policy_source": self.label, **extra})


def policy_source(settings: PolicySettings, *, logger: Log | None = None) -> PolicySource | None:
    """AppConfig when the settings name it; None keeps the policy the function was built with (the layer's)."""
    return AppConfigPolicy(settings, logger=logger) if settings.from_appconfig else None


class _HasPolicy(Protocol):
    policy: Policy


Holder = TypeVar("Holder", bound=_HasPolicy)


def current(source: PolicySource | None, built: Policy) -> Policy:
    """The policy in force now: the source's, or without one the policy the function was `built` with."""
    return built if source is None else source.current()


def in_force(holder: Holder, source: PolicySource | None) -> Holder:
    """`holder` (a dataclass with a `policy` field, built once) deciding under the policy in force now."""
    policy = current(source, holder.policy)
    return holder if holder.policy is policy else replace(holder, policy=policy)  # type: ignore[type-var]


def validate_version(event: dict[str, Any]) -> Policy:
    """AppConfig's Lambda validator: the version's content must pass `parse_policy`, or it is refused.

    AppConfig sends {"applicationId", "configurationProfileId", "configurationVersion", "content"
    (base64), "uri"}; an exception fails the validation, and its message is what AppConfig reports.
    """
    source = f"AppConfig configuration version {event.get('configurationVersion', '?')}"
    try:
        content = base64.b64decode(event["content"], validate=True)
    except (KeyError, TypeError, binascii.Error) as error:
        raise PolicyFileError(f"{source}: no base64 content in the validator's event: {error!s}") from None
    return parse_policy(content, source)
