"""Sample AWS events for tests, shaped as SES and EventBridge deliver them, and the SES verdicts they carry."""

from __future__ import annotations

from typing import Any

# spam, virus, spf, dkim, dmarc verdicts as SES reports them, by how a message arrived
VERDICTS = {
    "pass": {"spam": "PASS", "virus": "PASS", "spf": "PASS", "dkim": "PASS", "dmarc": "PASS"},
    "unauthenticated": {"spam": "PASS", "virus": "PASS", "spf": "GRAY", "dkim": "GRAY", "dmarc": "GRAY"},
    "spam": {"spam": "FAIL", "virus": "PASS", "spf": "PASS", "dkim": "PASS", "dmarc": "PASS"},
    "dmarc-reject": {"spam": "PASS", "virus": "PASS", "spf": "FAIL", "dkim": "FAIL", "dmarc": "FAIL"},
}


def receipt_event(
    message_id: str, sender: str, desks: list[str], subject: str, verdicts: dict[str, str], *, dmarc_policy: str | None = None
) -> dict[str, Any]:
    """What SES hands a synchronous Lambda action: `verdicts` maps spam, virus, spf, dkim, dmarc to a status."""
    headers = [
        {"name": "From", "value": f"Someone <{sender}>"},
        {"name": "To", "value": ", ".join(desks)},
        {"name": "Subject", "value": subject},
        {"name": "Message-ID", "value": f"<{message_id}@mail.example>"},
    ]
    receipt: dict[str, Any] = {
        "timestamp": "2026-01-13T09:30:00.000Z",
        "processingTimeMillis": 100,
        "recipients": desks,
        **{f"{name}Verdict": {"status": status} for name, status in verdicts.items()},
        "action": {
            "type": "Lambda",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:csp-mail-filter-InboundFilterFunction",
            "invocationType": "RequestResponse",
        },
    }
    if dmarc_policy:
        receipt["dmarcPolicy"] = dmarc_policy
    return {
        "Records": [
            {
                "eventSource": "aws:ses",
                "eventVersion": "1.0",
                "ses": {
                    "mail": {
                        "timestamp": "2026-01-13T09:30:00.000Z",
                        "source": sender,
                        "messageId": message_id,
                        "destination": desks,
                        "headersTruncated": False,
                        "headers": headers,
                        "commonHeaders": {
                            "from": [f"Someone <{sender}>"],
                            "to": desks,
                            "subject": subject,
                            "messageId": f"<{message_id}@mail.example>",
                        },
                    },
                    "receipt": receipt,
                },
            }
        ]
    }
