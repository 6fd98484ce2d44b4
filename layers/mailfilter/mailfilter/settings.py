"""Configuration from the environment, parsed once into a typed model.

Each function declares the settings it needs as a subclass of `EnvSettings`;
a missing or malformed variable is a clear error at cold start, naming the
variable, rather than a KeyError in the middle of a message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mailfilter.directory.records import Address
from mailfilter.policy.config import Policy, load_policy
from mailfilter.vocabulary.errors import ConfigurationError
from mailfilter.vocabulary.model import Cloud, Mode
from mailfilter.vocabulary.ses import SMTP_PREFIX
from mailfilter.vocabulary.validation import problems


class EnvSettings(BaseModel):
    """Field `directory_table` is read from the variable DIRECTORY_TABLE, and so on."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        environ = os.environ if environ is None else environ
        values = {name: environ[name.upper()] for name in cls.model_fields if environ.get(name.upper(), "") != ""}
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            found = "; ".join(f"{field.upper()}: {problem}" for field, problem in problems(error))
            raise ConfigurationError(f"{cls.__name__} from the environment: {found}") from None


class PolicySettings(EnvSettings):
    """The policy file, and the deployment's overrides of its mode and default cloud.

    With the three POLICY_APPCONFIG_* names set, the functions read the policy from AWS AppConfig
    instead, at most every POLICY_MAX_AGE_SECONDS (`mailfilter.aws.policy_source`, docs/policy.md).
    """

    policy_file: str | None = None
    mailfilter_mode: Mode | None = None
    default_cloud: Cloud | None = None
    policy_appconfig_application: str | None = None
    policy_appconfig_environment: str | None = None
    policy_appconfig_profile: str | None = None
    policy_max_age_seconds: int = Field(default=60, ge=1)

    @model_validator(mode="after")
    def _all_appconfig_names_or_none(self) -> Self:
        names = (self.policy_appconfig_application, self.policy_appconfig_environment, self.policy_appconfig_profile)
        if any(names) and not all(names):
            raise ValueError(
                "POLICY_APPCONFIG_APPLICATION, POLICY_APPCONFIG_ENVIRONMENT and POLICY_APPCONFIG_PROFILE are set together or not at all"
            )
        return self

    @property
    def from_appconfig(self) -> bool:
        return self.policy_appconfig_profile is not None

    def load(self) -> Policy:
        return self.overridden(load_policy(self.policy_file))

    def overridden(self, policy: Policy) -> Policy:
        """`policy` with the deployment's MAILFILTER_MODE and DEFAULT_CLOUD, wherever it was read from."""
        overrides = {"mode": self.mailfilter_mode, "default_cloud": self.default_cloud}
        return policy.model_copy(update={k: v for k, v in overrides.items() if v is not None})


class InboundSettings(PolicySettings):
    """The inbound filter's environment (template.yaml sets these)."""

    directory_table: str
    decisions_table: str
    idempotency_table: str
    mail_bucket: str
    inbound_prefix: str = "inbound/"  # where the receipt rule's S3 action stores each message
    quarantine_prefix: str = "quarantine/"
    filter_from_address: Address
    vendor_configuration_set: str | None = None
    decision_retention_days: int = 90
    log_addresses: bool = False  # customer addresses are masked in logs unless this is true


class OutboundSettings(PolicySettings):
    """The outbound functions' environment (template.yaml sets these)."""

    directory_table: str
    decisions_table: str
    idempotency_table: str
    mail_bucket: str
    quarantine_prefix: str = "quarantine/"
    filter_from_address: Address
    vendor_configuration_set: str | None = None
    decision_retention_days: int = 90
    idempotency_ttl_seconds: int = 7 * 24 * 3600  # a repeated message_id within this window sends nothing
    log_addresses: bool = False  # customer addresses are masked in logs unless this is true


class IntakeSettings(EnvSettings):
    """The intake's environment (template.yaml sets these)."""

    mail_bucket: str
    outbound_queue_url: str
    smtp_prefix: str = SMTP_PREFIX


class DigestSettings(PolicySettings):
    """The digests function's environment (template.yaml sets these)."""

    decisions_table: str
    idempotency_table: str
    filter_from_address: Address
    vendor_configuration_set: str | None = None


class AuditSettings(PolicySettings):
    """The outbound audit's environment (template.yaml sets these)."""

    directory_table: str
    decisions_table: str
    decision_retention_days: int = 90
    log_addresses: bool = False
    # The IAM identities whose sends are the filter's own, as SES names the caller in its
    # `ses:caller-identity` auto-tag: the gateway's and the inbound filter's execution roles
    # (template.yaml). Comma-separated; unset, every message is audited.
    filter_caller_identities: tuple[str, ...] = ()

    @field_validator("filter_caller_identities", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value
