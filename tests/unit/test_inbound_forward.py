"""Rewriting a customer's message for its partner: SES accepts it, the partner sees who and why, the body is untouched."""

from __future__ import annotations

from dataclasses import replace
from email import message_from_bytes
from email.policy import default

import pytest

from mailfilter.delivery.forward import ForwardNotice, forward_message, split_message
from mailfilter.vocabulary.errors import ForwardError, MessageTooLarge

NOTICE = ForwardNotice(
    filter_from="mail-filter@vendor.example",
    original_sender="cfo@tailspintoys.com",
    original_recipients=("billing@vendor.example",),
    partner_contacts=("csp-desk@fabrikam.example",),
    reason="Fabrikam Ltd owns the billing relationship.",
    rule="subscription-owned-by-partner",
    ses_message_id="abc123",
    customer_name="Bäckerei München",
)


def message(headers: bytes, body: bytes = b"Hello\r\n") -> bytes:
    return headers + b"\r\n" + body


def test_non_utf8_and_rfc2047_headers_are_reencoded_not_rejected():
    raw = message(
        b"From: =?iso-8859-1?q?J=FCrgen?= <cfo@tailspintoys.com>\r\n"
        b"Subject: Rechnung f\xfcr M\xe4rz\r\n"  # raw latin-1 bytes, not UTF-8
        b"To: billing@vendor.example\r\n"
    )
    out = forward_message(raw, NOTICE)
    assert out.isascii()
    sent = message_from_bytes(out, policy=default)
    assert str(sent["Subject"]) == "Rechnung für März"
    assert "cfo@tailspintoys.com" in str(sent["X-Original-From"])


def test_repeated_single_use_headers_are_kept_once_and_forged_filter_headers_dropped():
    raw = message(
        b"From: a@tailspintoys.com\r\nSubject: one\r\nSubject: two\r\n"
        b"X-Mailfilter-Rule: forged\r\nX-Original-From: forged@evil.example\r\nX-Communication-Category: operational\r\n"
    )
    sent = message_from_bytes(forward_message(raw, NOTICE))
    assert sent.get_all("Subject") == ["one"]
    assert sent.get_all("X-Mailfilter-Rule") == ["subscription-owned-by-partner"]
    assert sent.get_all("X-Original-From") == ["a@tailspintoys.com"]
    assert sent["X-Communication-Category"] is None


def test_header_values_cannot_inject_new_headers():
    notice = ForwardNotice(**{f: getattr(NOTICE, f) for f in NOTICE.__slots__} | {"reason": "why\r\nBcc: victim@example.com"})
    sent = message_from_bytes(forward_message(message(b"From: a@tailspintoys.com\r\n"), notice))
    assert sent["Bcc"] is None


def test_deeply_nested_mime_is_forwarded_byte_for_byte_without_parsing():
    depth = 2000
    head = b"".join(f'--b{i}\r\nContent-Type: multipart/mixed; boundary="b{i + 1}"\r\n\r\n'.encode() for i in range(depth))
    tail = b"".join(f"--b{i}--\r\n".encode() for i in reversed(range(depth)))
    body = head + b"--b2000\r\nContent-Type: text/plain\r\n\r\ndeep\r\n" + tail
    raw = message(b'From: a@tailspintoys.com\r\nContent-Type: multipart/mixed; boundary="b0"\r\n', body)
    out = forward_message(raw, NOTICE)
    assert body in out


def test_message_over_the_ses_limit_is_refused_with_a_clear_reason():
    with pytest.raises(MessageTooLarge, match="over SES's sending limit"):
        forward_message(message(b"From: a@tailspintoys.com\r\n", b"x" * 2000), NOTICE, max_bytes=1000)


def test_an_empty_message_cannot_be_forwarded():
    with pytest.raises(ForwardError):
        forward_message(b"", NOTICE)


def test_header_block_without_body_and_bare_lf_line_endings_are_read():
    message = split_message(b"From: a@b.example\nSubject: x\n folded\n\nbody\n")
    assert [f.key for f in message.fields] == ["from", "subject"]
    assert (message.body, message.newline) == (b"body\n", b"\n")


def test_a_header_block_without_a_blank_line_ends_at_the_first_line_that_is_not_a_header():
    raw = b"From: it@contoso.com\nTo: billing@vendor.example\nSubject: invoice question\nPlease resend invoice 42.\n"
    message = split_message(raw)
    assert [f.key for f in message.fields] == ["from", "to", "subject"]
    assert message.body == b"Please resend invoice 42.\n"
    forwarded = forward_message(raw, NOTICE)
    assert b"Please resend invoice 42." in forwarded
    assert message_from_bytes(forwarded, policy=default).get_payload()[1].get_payload() == "Please resend invoice 42.\n"


def test_fields_that_ses_takes_as_written_are_forwarded_byte_for_byte():
    long_value = b"<https://vendor.example/" + b"x" * 120 + b">"
    kept = [b"Subject:   spaced\r\n\tfolded\r\n", b"X-Long: " + long_value + b"\r\n", b"Thread-Topic: t\r\n"]
    raw = b"From: cfo@tailspintoys.com\r\n" + b"".join(kept) + b"\r\nbody\r\n"
    forwarded = forward_message(raw, NOTICE)
    for field in kept:
        assert field in forwarded
    assert b"X-Original-From: cfo@tailspintoys.com\r\n" in forwarded


def test_a_message_whose_sender_could_not_be_read_is_forwarded_without_a_reply_to():
    raw = message(b"From: cfo@tailspintoys.com <attacker@evil.example>\r\nSubject: hi\r\n")
    forwarded = message_from_bytes(forward_message(raw, replace(NOTICE, original_sender="")), policy=default)
    assert forwarded["Reply-To"] is None
    assert str(forwarded["From"].addresses[0].display_name) == "an unreadable sender via the mail filter"
