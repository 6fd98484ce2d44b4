"""The fixed words of the mail path: SES's limits, the mail bucket's prefixes, the tags and headers the filter writes.

Every use case, reader and adapter takes these from here, so a limit or a name is changed once.
"""

from __future__ import annotations

# -- SES's sending limits ------------------------------------------------------------------------

SES_MAX_RECIPIENTS = 50

SES_MAX_MESSAGE_BYTES = 40 * 1024 * 1024  # SES v2's limit for a whole message, after encoding


# -- the mail bucket -------------------------------------------------------------------------------

# Where applications store messages too large for a queue message (`raw_key`); the gateway reads nothing else.
OUTGOING_PREFIX = "outgoing/"

# Where the SMTP endpoint's rule set stores each message it takes in (template.yaml, docs/smtp.md).
SMTP_PREFIX = "outgoing/smtp/"


# -- SES message tags on the filter's own sends ---------------------------------------------------

# The gateway's own message tag (`mailfilter.aws.mailer` sets it). Any SES caller can set a
# tag of this name, so it is a label for dashboards and is never evidence of anything.
GATEWAY_TAG = "csp-mail-filter"

GATEWAY_TAG_VALUE = "gateway"

# SES's auto-tag naming "the IAM identity of the SES user who sent the email", on every event
# published through a configuration set. A caller's tag names allow only letters, digits, '_'
# and '-' (SES's MessageTag), so no caller can write it; ses:feedback-id-a/-b are the exception.
CALLER_IDENTITY_TAG = "ses:caller-identity"


# -- headers the filter writes on a partner notice ------------------------------------------------

FILTER_RULE_HEADER = "X-CSP-Mail-Filter-Rule"

FILTER_CUSTOMER_HEADER = "X-CSP-Mail-Filter-Customer"
