"""Every error the filter raises across a module boundary, in one place.

Each says what its callers do about it: an event or request error is refused
with its text, an `...Unavailable` error defers or retries (nothing is decided
against the rules on a failed read), a release or configuration error stops
the operator's command with its text.
"""

from __future__ import annotations

# -- input: events, requests, headers, addresses ------------------------------------------------


class EventError(ValueError):
    """An event that is not of the expected shape; the message names what was expected."""


class UnreadableHeader(ValueError):  # noqa: N818 - reads as the condition callers handle
    """A header that does not read as one clean value; the text says why."""


class InvalidAddressError(ValueError):
    """An address or domain that cannot be used as a mail address."""


class CompositionError(ValueError):
    """A send request that cannot be turned into a message; the text says why."""


class ForwardError(ValueError):
    """The message cannot be forwarded; the text says why (it is quarantined instead)."""


class MessageTooLarge(ForwardError):  # noqa: N818 - reads as the condition callers handle
    """The rewritten message is over SES's sending size limit."""


class PolicyFileError(ValueError):
    """A policy file that cannot be read or does not validate."""


class ConfigurationError(RuntimeError):
    """The function's environment is missing a variable or holds an invalid value."""


class NotReplayableError(ValueError):
    """The record does not carry the facts a replay needs (written before they were recorded)."""


class DigestRequestError(ValueError):
    """A schedule event that does not say which digest to send or for when."""


# -- AWS: what could not be read or written --------------------------------------------------


class DirectoryUnavailable(RuntimeError):  # noqa: N818 - the name says what callers handle
    """The directory could not be read; callers must defer the message, never guess."""


class MailUnavailable(RuntimeError):  # noqa: N818 - the name says what callers handle
    """The raw message cannot be read from, or kept in, the mail bucket."""


class StoredMessageMissing(LookupError):  # noqa: N818
    """No message is stored under the key a request names."""


class StoredMessageTooLarge(RuntimeError):  # noqa: N818
    """The raw message is larger than the caller can send; it was not read."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"the message is {size:,} bytes, over SES's sending limit of {limit:,} bytes")
        self.size = size


class MessageInProgress(RuntimeError):  # noqa: N818 - the name says what callers handle
    """Another invocation holds this message's claim; its record is retried later."""


class LedgerError(RuntimeError):
    """The ledger could not be written; the record is retried."""


class PolicyUnavailable(RuntimeError):  # noqa: N818 - the name says what callers handle
    """No valid policy could be read, and none was read before: nothing may be decided."""


class QueueUnavailable(RuntimeError):  # noqa: N818 - the name says what callers handle
    """The request could not be put on the queue; nothing was queued."""


class SendError(RuntimeError):
    """SES did not accept a message after botocore's retries; `code` is SES's error code."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class DecisionLogError(RuntimeError):
    """The decisions table could not be written or read."""


class QuarantineError(LookupError):
    """An id that is malformed or not in the quarantine."""


class BatchIncompleteError(RuntimeError):
    """Part of a batch was still unprocessed after every retry."""

    def __init__(self, operation: str, remaining: int, attempts: int) -> None:
        self.remaining = remaining
        super().__init__(f"{operation}: {remaining} unprocessed after {attempts} attempts")


class DigestsFailed(RuntimeError):  # noqa: N818 - the name says what the schedule's retry sees
    """Some digests were not sent; the others were. The schedule's retry sends just those."""


# -- the operator's release --------------------------------------------------------------------


class ReleaseError(ValueError):
    """The item cannot be released as asked; the text says why."""
