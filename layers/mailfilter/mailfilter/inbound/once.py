"""Each receipt rule's share of a message handled once: powertools idempotency, keyed on the message and the rule's desks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError, IdempotencyPersistenceLayerError
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.typing import LambdaContext

# SES invokes the filter once per matching receipt rule with the same message id, so the
# rule's recipients are part of the key: each rule's share of a message is handled once.
IDEMPOTENCY_KEY = "[Records[0].ses.mail.messageId, Records[0].ses.receipt.recipients]"
IDEMPOTENCY_SECONDS = 7 * 24 * 3600  # longer than SES or anyone would plausibly redeliver the same event


def idempotency_config() -> IdempotencyConfig:
    return IdempotencyConfig(
        event_key_jmespath=IDEMPOTENCY_KEY, raise_on_no_idempotency_key=True, expires_after_seconds=IDEMPOTENCY_SECONDS
    )


class Once(NamedTuple):
    """How one run went: `response` when the event was handled now or before."""

    response: dict[str, str] | None
    in_progress: bool = False  # another invocation holds this share right now and will act on it
    store_error: str | None = None  # the idempotency store failed (before or after handling: see `response`)


def run_once(
    store: BasePersistenceLayer,
    config: IdempotencyConfig,
    event: dict[str, Any],
    context: LambdaContext | None,
    handle: Callable[[], dict[str, str]],
) -> Once:
    """`handle()` unless this rule's share of the message was handled before (its first response, then)."""
    if context is not None:
        config.register_lambda_context(context)
    handled: list[dict[str, str]] = []

    @idempotent_function(data_keyword_argument="receipt", persistence_store=store, config=config, key_prefix="inbound-filter")
    def once(receipt: dict[str, Any]) -> dict[str, str]:
        handled.append(handle())
        return handled[-1]

    try:
        return Once(once(receipt=event))
    except IdempotencyAlreadyInProgressError:
        return Once(None, in_progress=True)
    except IdempotencyPersistenceLayerError as error:
        return Once(handled[-1] if handled else None, store_error=str(error))
