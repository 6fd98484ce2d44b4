"""Messages stored in S3 and named by `raw_key` (the claim check): read as a stream, decided and sent like any other.

A send request on SQS holds at most 1 MiB, so an application stores a large message
under outgoing/ in the mail bucket and names its key. The gateway reads it into one
buffer, changes only the header fields it means to change, and streams the rest to SES.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailfilter.aws import clients
from mailfilter.aws.mailer import _StreamedBody
from mailfilter.aws.quarantine import Quarantine
from mailfilter.aws.raw_mail import MailBucket
from mailfilter.events.send_request import SendRequest
from mailfilter.release.outbound import release
from mailfilter.vocabulary.model import Action
from mailfilter.vocabulary.ses import SES_MAX_MESSAGE_BYTES
from mailfilter_testkit.outbound_support import BUCKET, FILTER_FROM, Harness, LambdaContext, load_function, sqs_event

FABRIKAM = ["csp-desk@fabrikam.example"]
ALLOWED, REROUTED, BLOCKED = "cto@woodgrovebank.com", "it@contoso.com", "it@tailspintoys.com"


@pytest.fixture
def gateway(outbound: Harness) -> Any:
    return load_function("outbound_gateway")


def stored_message(size: int = 0, *, to: str = f"{ALLOWED}, {REROUTED}") -> bytes:
    """A product mail with a base64 attachment that brings it to about `size` bytes."""
    head = (
        "From: news@vendor.example\r\n"
        f"To: {to}\r\n"
        "Subject: New Azure features\r\n"
        "X-Product: azure\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b1"\r\n'
        "\r\n"
        "--b1\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        "What is new this month.\r\n"
        "--b1\r\n"
        'Content-Type: application/pdf; name="notes.pdf"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
    ).encode()
    line = base64.b64encode(bytes(range(57))) + b"\r\n"  # 78 bytes, as MIME writes base64
    lines = max(size - len(head) - 10, 0) // len(line)
    return head + line * lines + b"--b1--\r\n"


def store(data: bytes) -> str:
    key = f"outgoing/tests/{uuid.uuid4().hex}.eml"
    clients.client("s3").put_object(Bucket=BUCKET, Key=key, Body=data)
    return key


def raw_key_request(key: str, *recipients: str, **extra: Any) -> dict[str, Any]:
    return {"message_id": f"stored-{uuid.uuid4().hex[:12]}", "from": "news@vendor.example", "to": list(recipients), "raw_key": key, **extra}


def run(gateway: Any, *requests: dict[str, Any]) -> dict[str, Any]:
    return gateway.lambda_handler(sqs_event(*requests), LambdaContext())


def test_a_stored_message_is_decided_per_recipient_and_its_body_leaves_as_stored(gateway: Any, outbound: Harness) -> None:
    """Rules 1, 2 and 4 on a stored message: the direct customer gets it, the CSP customer's partner gets a notice."""
    data = stored_message(30_000)
    body = data.split(b"\r\n\r\n", 1)[1]
    request = raw_key_request(store(data), ALLOWED, REROUTED)
    run(gateway, request)
    sent = {tuple(s.envelope): s for s in outbound.sent()}
    assert set(sent) == {(ALLOWED,), tuple(FABRIKAM)}
    allowed = sent[(ALLOWED,)].raw
    assert allowed.endswith(b"\r\n\r\n" + body), "the body leaves byte for byte"
    assert b"To: cto@woodgrovebank.com\r\n" in allowed, "the allowed copy shows only its own recipient"
    assert body in sent[tuple(FABRIKAM)].raw, "the partner's notice attaches the stored body unchanged"
    records = {r["recipient"]: r["effective"] for r in outbound.records(request["message_id"]) if r["kind"] == "decision"}
    assert records == {ALLOWED: "allow", REROUTED: "reroute"}


def test_bcc_recipients_of_a_stored_message_are_decided_and_stay_hidden(gateway: Any, outbound: Harness) -> None:
    """Every envelope recipient counts: a Bcc to a CSP-only customer is blocked like a To."""
    request = raw_key_request(store(stored_message(5_000, to=ALLOWED)), ALLOWED, bcc=[BLOCKED])
    answer = run(gateway, request)
    assert answer == {"batchItemFailures": []}
    (sent,) = outbound.sent()
    assert sent.envelope == [ALLOWED]
    assert BLOCKED.encode() not in sent.raw
    records = {r["recipient"]: r["effective"] for r in outbound.records(request["message_id"]) if r["kind"] == "decision"}
    assert records == {ALLOWED: "allow", BLOCKED: "block"}


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("quarantine/items/2026/01/01/x.json", "must be a key under outgoing/"),
        ("inbound/abc", "must be a key under outgoing/"),
        ("outgoing/../quarantine/x", "no empty, '.' or '..' segments"),
        ("outgoing/", "must be a key under outgoing/"),
    ],
)
def test_a_raw_key_outside_outgoing_is_refused_so_no_request_can_send_quarantined_or_inbound_mail(
    gateway: Any, outbound: Harness, key: str, why: str
) -> None:
    request = raw_key_request(key, ALLOWED)
    run(gateway, request)
    assert outbound.sent() == []
    (record,) = outbound.records(request["message_id"])
    assert record["kind"] == "rejected"
    assert why in record["error"]


def test_a_raw_key_that_names_nothing_is_refused_with_its_reason(gateway: Any, outbound: Harness) -> None:
    request = raw_key_request("outgoing/tests/never-stored.eml", ALLOWED)
    run(gateway, request)
    (record,) = outbound.records(request["message_id"])
    assert record["kind"] == "rejected"
    assert "no message is stored at s3://" in record["error"]


def test_raw_key_is_a_complete_message_and_combines_with_no_other_body() -> None:
    with pytest.raises(ValueError, match="raw_key is a complete message"):
        SendRequest.model_validate({"from": "a@vendor.example", "to": [ALLOWED], "raw_key": "outgoing/x.eml", "text": "hi"})
    with pytest.raises(ValueError, match="raw is a complete message; do not combine it with raw_key"):
        SendRequest.model_validate({"from": "a@vendor.example", "to": [ALLOWED], "raw_key": "outgoing/x.eml", "raw": "QQ=="})


def test_the_size_limit_counts_the_message_not_its_base64_text() -> None:
    data = b"x" * 1000
    request = SendRequest.model_validate({"from": "a@vendor.example", "to": [ALLOWED], "raw": base64.b64encode(data).decode()})
    assert request.size_bytes == 1000


def test_the_same_stored_message_delivered_twice_is_sent_once(gateway: Any, outbound: Harness) -> None:
    """Exactly once: a redelivered request that names the same object sends nothing again."""
    request = raw_key_request(store(stored_message(2_000, to=ALLOWED)), ALLOWED)
    run(gateway, request)
    run(gateway, dict(request))
    assert len(outbound.sent()) == 1


def test_a_blocked_stored_message_is_kept_beside_the_quarantine_and_can_be_released(gateway: Any, outbound: Harness) -> None:
    """Nothing is lost: the stored object is copied into quarantine/ (outgoing/ expires sooner) and releases from there."""
    data = stored_message(3_000, to=BLOCKED)
    key = store(data)
    request = raw_key_request(key, BLOCKED)
    run(gateway, request)
    assert outbound.sent() == []
    (item,) = list(Quarantine(BUCKET).list())
    assert item.raw is not None
    assert item.raw["key"].startswith("quarantine/raw/outgoing/")
    clients.client("s3").delete_object(Bucket=BUCKET, Key=key)  # outgoing/'s lifecycle expired it

    done = release(
        item,
        action=Action.ALLOW,
        by="test",
        mailer=_mailer(),
        decisions=_decisions(outbound),
        from_address=FILTER_FROM,
        mail=MailBucket(BUCKET),
        why="checked",
    )
    assert done.delivered_to == [BLOCKED]
    (sent,) = outbound.sent()
    assert sent.raw.endswith(data.split(b"\r\n\r\n", 1)[1])


def test_a_35_mb_stored_message_is_allowed_and_rerouted_whole(gateway: Any, outbound: Harness) -> None:
    """SES's 40 MB limit, not the queue's 1 MiB, bounds what the gateway sends."""
    data = stored_message(35 * 1024 * 1024)
    body_digest = hashlib.sha256(data.split(b"\r\n\r\n", 1)[1]).hexdigest()
    request = raw_key_request(store(data), ALLOWED, REROUTED)
    del data
    assert run(gateway, request) == {"batchItemFailures": []}
    sent = {tuple(s.envelope): s.raw for s in outbound.sent()}
    assert set(sent) == {(ALLOWED,), tuple(FABRIKAM)}
    assert hashlib.sha256(sent[(ALLOWED,)].split(b"\r\n\r\n", 1)[1]).hexdigest() == body_digest
    assert len(sent[tuple(FABRIKAM)]) > 35 * 1024 * 1024


def test_a_41_mb_stored_message_is_refused_with_its_reason_and_kept(gateway: Any, outbound: Harness) -> None:
    data = stored_message(41 * 1024 * 1024)
    key = store(data)
    request = raw_key_request(key, ALLOWED)
    run(gateway, request)
    assert outbound.sent() == []
    (record,) = outbound.records(request["message_id"])
    assert record["kind"] == "rejected"
    assert f"over SES's sending limit of {SES_MAX_MESSAGE_BYTES:,} bytes" in record["error"]
    assert key in record["error"]
    kept = clients.client("s3").head_object(Bucket=BUCKET, Key=key)
    assert kept["ContentLength"] == len(data)


@given(
    parts=st.lists(st.binary(max_size=40), min_size=1, max_size=5),
    reads=st.lists(st.integers(min_value=1, max_value=30), max_size=20),
    seek_to=st.integers(min_value=0, max_value=400),
)
def test_the_streamed_body_reads_as_the_json_botocore_would_have_built(parts: list[bytes], reads: list[int], seek_to: int) -> None:
    """The mailer's stream is byte for byte the JSON body of SES v2's SendEmail, however it is read or rewound."""
    prefix, suffix = b'{"Content": {"Raw": {"Data": "', b'"}}}'
    expected = prefix + base64.b64encode(b"".join(parts)) + suffix
    body = _StreamedBody(prefix, parts, suffix)
    assert len(body) == len(expected)
    got = b"".join(body.read(size) for size in reads) + body.read()
    assert got == expected
    body.seek(min(seek_to, len(expected)))
    assert body.read() == expected[min(seek_to, len(expected)) :]
    assert json.loads(expected)["Content"]["Raw"]["Data"] == base64.b64encode(b"".join(parts)).decode()


def _mailer() -> Any:
    from mailfilter.aws.mailer import Mailer  # noqa: PLC0415

    return Mailer()


def _decisions(outbound: Harness) -> Any:
    from mailfilter.aws.decisions import DecisionLog  # noqa: PLC0415

    return DecisionLog(outbound.tables["DecisionsTable"])
