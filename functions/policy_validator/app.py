"""AppConfig's validator for the policy profile: a version is deployed only if it validates (docs/policy.md).

The same validation as the layer's file, the functions reading AppConfig and `mailfilter policy
check` (`mailfilter.policy.config.parse_policy`). A refused version raises: AppConfig sees the
function error and stops the deployment, with every problem in the message.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from mailfilter.aws.policy_source import validate_version
from mailfilter.vocabulary.errors import PolicyFileError

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        policy = validate_version(event)
    except PolicyFileError as error:
        logger.error("policy version refused", extra={"reason": str(error)})
        raise
    logger.info("policy version valid", extra={"version": event.get("configurationVersion"), "rules": len(policy.rules)})
    return {"valid": True, "rules": len(policy.rules)}
