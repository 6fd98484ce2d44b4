"""Configuration from the environment, parsed once into a typed model.

Each function declares the settings it needs as a subclass of `EnvSettings`;
a missing or malformed variable is a clear error at cold start, naming the
variable, rather than a KeyError in the middle of a message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mailfilter.model import Cloud, Mode
from mailfilter.policy.config import Policy, load_policy
from mailfilter.validation import problems


class ConfigurationError(RuntimeError):
    """The function's environment is missing a variable or holds an invalid value."""


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
