"""Faults under load: generated directory and mail through the real handlers, checked against an independent oracle.

Used by `bench/reliability.py` (the full run, `make reliability`) and `tests/test_reliability.py`
(a small run inside `make test`). One run:

1. generates a directory (customers of every segment in all three clouds, the same domains
   reused across clouds with different relationships, partners with and without contacts)
   and imports it into DynamoDB Local with the operator's own import;
2. puts N generated send requests (1 to 50 recipients, every category, product and cloud) on an
   SQS queue (moto) whose redrive policy is the template's, and runs the outbound gateway's real
   `lambda_handler` in W simulated execution environments (each its own import of
   functions/outbound_gateway/app.py), fed batches of 10 as Lambda's event source mapping does:
   successes deleted, reported failures and crashed invocations back after the visibility
   timeout, dead-lettered after maxReceiveCount receives; some batches are handed to two
   environments at once;
3. sends M generated SES receipt events through the inbound filter's real `lambda_handler`,
   some twice at once and some again afterwards;
4. with faults paused, reads what moto's SES sent, what S3 quarantined, what the decisions
   table holds and what the dead-letter queue kept, and compares each message with the
   oracle below, which applies docs/policy.md's table to the generated directory without
   using mailfilter.policy.

AWS faults come from `faults.FaultInjector` on the shared clients; crashes and timeouts
from `faults.Crashing` around the gateway's collaborators.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import re
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from email import message_from_string
from email.utils import getaddresses
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
from aws_resources import create_tables_from_template, delete_tables, template
from faults import Crashing, Deadline, FaultInjector, LambdaCrash
from moto import mock_aws
from moto.ses import models as moto_ses
from moto.ses.models import ses_backends
from sample_events import receipt_event

from mailfilter.aws import clients

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT, REGION = "123456789012", "us-east-1"
BUCKET = "csp-mail-filter-mail"
FILTER_FROM = "mail-filter@vendor.example"
VENDOR_SENDERS = ("notices@vendor.example", "billing@vendor.example", "status@vendor.example", "news@vendor.example")
# The oracle's own copy of the default policy's sender map and category order: every source is
# heard and the most restrictive category wins, so a declaration never lowers the sender's category.
SENDER_CATEGORY = {"billing@vendor.example": "subscription", "status@vendor.example": "service-incident", "news@vendor.example": "product"}
MOST_RESTRICTIVE_FIRST = ("subscription", "product", "general", "operational", "service-incident")
CLOUDS = ("commercial", "usgov", "germany")
CATEGORIES = ("subscription", "service-incident", "operational", "product", "general")
PRODUCTS = (None, "azure", "microsoft-365", "dynamics-365")

# ---------------------------------------------------------------------------------------------- directory

PARTNERS = {
    "alpha": lambda cloud: [f"desk@alpha-{cloud}.example", f"billing@alpha-{cloud}.example"],
    "beta": lambda cloud: [f"csp@beta-{cloud}.example"],
    "mute": lambda cloud: [],  # a partner without a contact address: its reroutes are kept, never allowed
}
# (CSP links, direct products, direct relationship): every segment and product condition of the table.
ARCHETYPES = (
    ((), ("azure",), True),  # no CSP partner
    ((("alpha", ()),), (), False),  # CSP only, the partner owns everything
    ((("beta", ("microsoft-365",)),), (), False),  # CSP only, the partner owns one product
    ((("alpha", ("azure", "microsoft-365")),), ("dynamics-365",), True),  # CSP and direct
    ((("beta", ()),), ("azure",), True),  # CSP and direct, the partner owns what is not bought directly
    ((("alpha", ("azure",)), ("beta", ("microsoft-365",))), (), False),  # two partners
    ((("mute", ()),), (), False),  # the partner has no contact
)


@dataclass(frozen=True)
class Customer:
    cloud: str
    tenant_id: str
    domain: str
    csp: tuple[tuple[str, tuple[str, ...]], ...]
    direct_products: tuple[str, ...]
    direct: bool


def generate_directory(customers_per_cloud: int) -> tuple[list[dict[str, Any]], dict[tuple[str, str], Customer]]:
    """Directory records, and the customers by (cloud, domain). Domain c<i>.example exists in every cloud."""
    records: list[dict[str, Any]] = []
    customers: dict[tuple[str, str], Customer] = {}
    for cloud_index, cloud in enumerate(CLOUDS):
        for partner_id, contacts in PARTNERS.items():
            records.append(
                {"kind": "partner", "cloud": cloud, "partner_id": partner_id, "name": f"Partner {partner_id}", "contacts": contacts(cloud)}
            )
        for i in range(customers_per_cloud):
            csp, direct_products, direct = ARCHETYPES[(i + cloud_index) % len(ARCHETYPES)]
            customer = Customer(cloud, f"{cloud}-c{i}", f"c{i}.example", csp, direct_products, direct)
            customers[cloud, customer.domain] = customer
            records.append(
                {
                    "kind": "customer",
                    "cloud": cloud,
                    "tenant_id": customer.tenant_id,
                    "name": f"Customer {i} {cloud}",
                    "domains": [customer.domain],
                    "direct_relationship": direct,
                    "direct_products": list(direct_products),
                    "csp": [{"partner_id": p, "products": list(products)} for p, products in csp],
                }
            )
    return records, customers


# ---------------------------------------------------------------------------------------------- oracle


@dataclass(frozen=True)
class Expected:
    action: str  # allow, reroute, block
    contacts: tuple[str, ...] = ()
    tenant: str | None = None


def _owners(customer: Customer, product: str | None) -> list[tuple[str, tuple[str, ...]]]:
    if product is None:
        return list(customer.csp)
    listing = [link for link in customer.csp if product in link[1]]
    if listing:
        return listing
    if product in customer.direct_products:
        return []
    return [link for link in customer.csp if not link[1]]


def _reroute(customer: Customer, product: str | None) -> Expected:
    partners = _owners(customer, product) or list(customer.csp)
    contacts = tuple(dict.fromkeys(c for partner, _ in partners for c in PARTNERS[partner](customer.cloud)))
    if not contacts:
        return Expected("block", (), customer.tenant_id)
    return Expected("reroute", contacts, customer.tenant_id)


def oracle(customer: Customer | None, category: str, product: str | None) -> Expected:
    """docs/policy.md's default table, applied to the generated directory."""
    if customer is None:
        return Expected("allow")
    tenant = customer.tenant_id
    if not customer.csp or category in ("service-incident", "operational"):
        return Expected("allow", (), tenant)
    held = product is not None and bool(_owners(customer, product))
    if category == "subscription":
        if customer.direct and product in customer.direct_products and not held:
            return Expected("allow", (), tenant)
        return _reroute(customer, product)
    if category == "product":
        if not customer.direct:
            return Expected("block", (), tenant)
        return _reroute(customer, product) if held else Expected("allow", (), tenant)
    return Expected("allow", (), tenant) if customer.direct else _reroute(customer, product)


def customer_of(customers: dict[tuple[str, str], Customer], cloud: str, address: str) -> Customer | None:
    domain = address.rsplit("@", 1)[1]
    while True:
        if (cloud, domain) in customers:
            return customers[cloud, domain]
        if "." not in domain:
            return None
        domain = domain.split(".", 1)[1]


# ---------------------------------------------------------------------------------------------- mail


@dataclass
class Outbound:
    message_id: str
    request: dict[str, Any]
    expected: dict[str, Expected]  # per recipient

    @property
    def allowed(self) -> set[str]:
        return {r for r, e in self.expected.items() if e.action == "allow"}

    @property
    def blocked(self) -> set[str]:
        return {r for r, e in self.expected.items() if e.action == "block"}

    def groups(self) -> dict[tuple[str | None, frozenset[str]], set[str]]:
        found: dict[tuple[str | None, frozenset[str]], set[str]] = defaultdict(set)
        for recipient, e in self.expected.items():
            if e.action == "reroute":
                found[e.tenant, frozenset(e.contacts)].add(recipient)
        return found


def _address_pool(rng: random.Random, customers_per_cloud: int) -> list[str]:
    pool = [f"user{k}@c{i}.example" for i in range(customers_per_cloud) for k in range(3)]
    pool += [f"user{k}@eu.c{i}.example" for i in range(customers_per_cloud) for k in range(1)]  # subdomains are covered
    pool += [f"user{k}@nobody{j}.example" for j in range(max(4, customers_per_cloud // 3)) for k in range(2)]
    rng.shuffle(pool)
    return pool


def generate_outbound(
    count: int, seed: int, customers: dict[tuple[str, str], Customer], customers_per_cloud: int, max_recipients: int = 50
) -> list[Outbound]:
    rng = random.Random(seed)
    pool = _address_pool(rng, customers_per_cloud)
    messages = []
    for n in range(count):
        cloud, category, product = rng.choice(CLOUDS), rng.choice(CATEGORIES), rng.choice(PRODUCTS)
        recipients = rng.sample(pool, min(len(pool), rng.randint(1, max_recipients)))
        to, cc, bcc = [], [], []
        for recipient in recipients:
            rng.choice((to, to, cc, bcc)).append(recipient)
        message_id = f"lout-{n:06d}"
        sender = rng.choice(VENDOR_SENDERS)
        request: dict[str, Any] = {
            "message_id": message_id,
            "from": sender,
            "to": to,
            "cc": cc,
            "bcc": bcc,
            "subject": f"{message_id} about {category}",
            "text": f"Body of {message_id}.\n",
            "category": category,
            "cloud": cloud,
        }
        if product:
            request["product"] = product
        heard = [category, SENDER_CATEGORY.get(sender, category)]
        effective = min(heard, key=MOST_RESTRICTIVE_FIRST.index)
        expected = {r: oracle(customer_of(customers, cloud, r), effective, product) for r in recipients}
        messages.append(Outbound(message_id, request, expected))
    return messages


DESKS = {
    "subscription": ("billing@vendor.example", "licensing@vendor.example"),
    "operational": ("support@vendor.example", "status@vendor.example"),
    "product": ("sales@vendor.example",),
}
PRODUCT_WORDS = {None: "our account", "azure": "Azure", "microsoft-365": "Microsoft 365", "dynamics-365": "Dynamics 365"}
VERDICTS = {
    "pass": {"spam": "PASS", "virus": "PASS", "spf": "PASS", "dkim": "PASS", "dmarc": "PASS"},
    "unauthenticated": {"spam": "PASS", "virus": "PASS", "spf": "GRAY", "dkim": "GRAY", "dmarc": "GRAY"},
    "spam": {"spam": "FAIL", "virus": "PASS", "spf": "PASS", "dkim": "PASS", "dmarc": "PASS"},
    "dmarc-reject": {"spam": "PASS", "virus": "PASS", "spf": "FAIL", "dkim": "FAIL", "dmarc": "FAIL"},
}


@dataclass
class Inbound:
    message_id: str
    event: dict[str, Any]
    raw: bytes
    expected: dict[str, Expected]  # per desk


def inbound_oracle(customer: Customer | None, category: str, product: str | None, verdict: str) -> Expected:
    if verdict in ("spam", "dmarc-reject"):
        return Expected("block", (), customer.tenant_id if customer else None)
    expected = oracle(customer, category, product)
    if expected.action == "reroute" and verdict != "pass":
        return Expected("block", (), expected.tenant)  # never relay unauthenticated mail to a partner
    return expected


def generate_inbound(count: int, seed: int, customers: dict[tuple[str, str], Customer], customers_per_cloud: int) -> list[Inbound]:
    rng = random.Random(seed + 1)
    pool = _address_pool(rng, customers_per_cloud)
    events = []
    for n in range(count):
        category = rng.choice(tuple(DESKS))
        desks = rng.sample(DESKS[category], rng.randint(1, len(DESKS[category])))
        product = rng.choice(PRODUCTS)
        verdict = rng.choices(tuple(VERDICTS), weights=(6, 2, 1, 1))[0]
        sender = rng.choice(pool)
        message_id = f"lin-{n:06d}"
        subject = f"{message_id} question about {PRODUCT_WORDS[product]}"
        raw = (
            f"From: Someone <{sender}>\r\nTo: {', '.join(desks)}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{message_id}@mail.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nBody of {message_id}.\r\n"
        ).encode()
        event = receipt_event(
            message_id, sender, desks, subject, VERDICTS[verdict], dmarc_policy="reject" if verdict == "dmarc-reject" else None
        )
        customer = customer_of(customers, "commercial", sender)  # the default policy's desks are in the default cloud
        expected = {d: inbound_oracle(customer, category, product, verdict) for d in desks}
        events.append(Inbound(message_id, event, raw, expected))
    return events


# ---------------------------------------------------------------------------------------------- the stack


@dataclass
class Config:
    messages: int = 10_000
    max_recipients: int = 50
    inbound: int = 2_000
    customers_per_cloud: int = 30
    fault_rate: float = 0.10  # per HTTP attempt: throttles, server errors, timeouts (botocore retries them)
    unprocessed_rate: float = 0.10  # per DynamoDB batch call: everything unprocessed
    exhausted_rate: float = 0.01  # per AWS call: the error after botocore's retries are used up
    crash_rate: float = 0.01  # per crash point (before each send, quarantine and finish; after each mark)
    unsafe_crash_rate: float = 0.0  # crashes between SES accepting a send and its progress marker (the known at-least-once window)
    concurrent_rate: float = 0.05  # share of batches handed to two environments at once
    workers: int = 4
    batch_size: int = 10
    timeout_seconds: float = 20.0  # the function's timeout: powertools' in-progress records expire after it (template: 60 s)
    visibility_seconds: int = 25  # the queue's visibility timeout, longer than the function's as template.yaml has it (360 s)
    seed: int = 7


def load_module(path: Path) -> ModuleType:
    """A fresh import of a handler file: one per simulated execution environment."""
    name = f"_reliability_{path.parent.name}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


QUEUE_WINDOW = 300  # send requests waiting in the queue at most


class Traced:
    """Records each call of a collaborator (time, environment, call, outcome), to explain a duplicate when one is found."""

    def __init__(self, inner: Any, trace: list[tuple[float, int, str, str, str]], environment: int) -> None:
        self._inner, self._trace, self._environment = inner, trace, environment
        self.label = type(inner).__name__

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            what = f"{self.label}.{name} {str(args[0])[:40] if args else ''} {kwargs.get('recipients', '')}"[:160]
            token = re.search(r"l(?:out|in)-\d{6}", str(args[0])[:4000] if args else "")
            key = token.group(0) if token else "?"
            try:
                result = target(*args, **kwargs)
            except BaseException as error:
                self._trace.append((time.monotonic(), self._environment, key, what, f"{type(error).__name__}: {error}"[:120]))
                raise
            self._trace.append((time.monotonic(), self._environment, key, what, "ok"))
            return result

        return call


class Context:
    """A Lambda context whose remaining time runs down from the invocation's start, as the real one does."""

    def __init__(self, function_name: str, timeout: float) -> None:
        self.function_name = function_name
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@dataclass
class Report:
    config: Config
    messages: int = 0
    recipients: int = 0
    inbound: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    aws_calls: dict[str, int] = field(default_factory=dict)
    crashes: Counter[str] = field(default_factory=Counter)
    record_failures: Counter[str] = field(default_factory=Counter)
    invocations: int = 0
    concurrent_invocations: int = 0
    receives: int = 0
    violations: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    duplicate_sends: list[str] = field(default_factory=list)
    unsafe_window_duplicates: list[str] = field(default_factory=list)
    dead_lettered: int = 0
    inbound_deferred: int = 0
    inbound_redelivered: int = 0
    unhandled_exceptions: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def rows(self) -> list[tuple[str, str]]:
        c = self.config
        rows = [
            ("outbound messages", f"{self.messages:,}"),
            ("outbound recipients", f"{self.recipients:,}"),
            ("inbound events", f"{self.inbound:,}"),
            (
                "faults: per HTTP attempt / per batch call / after retries",
                f"{c.fault_rate:.0%} / {c.unprocessed_rate:.0%} / {c.exhausted_rate:.0%}",
            ),
            ("seed", str(c.seed)),
            ("AWS calls (dynamodb/s3/sesv2)", "/".join(f"{self.aws_calls.get(s, 0):,}" for s in ("dynamodb", "s3", "sesv2"))),
            ("faults injected", f"{sum(self.faults.values()):,}"),
            *((f"  {kind}", f"{n:,}") for kind, n in self.faults.items()),
            ("crashes and timeouts", f"{sum(self.crashes.values()):,}"),
            *((f"  {kind}", f"{n:,}") for kind, n in sorted(self.crashes.items())),
            ("records failed back to the queue, by cause", f"{sum(self.record_failures.values()):,}"),
            *((f"  {kind}", f"{n:,}") for kind, n in self.record_failures.most_common()),
            ("gateway invocations (batches of 10)", f"{self.invocations:,}"),
            ("  of them a second copy run at once", f"{self.concurrent_invocations:,}"),
            ("SQS receives of send requests", f"{self.receives:,}"),
            ("dead-lettered after 5 receives", f"{self.dead_lettered:,}"),
            ("inbound events deferred (recorded, kept)", f"{self.inbound_deferred:,}"),
            ("inbound events delivered twice by SES", f"{self.inbound_redelivered:,}"),
            ("violations", f"{len(self.violations):,}"),
            ("lost", f"{len(self.lost):,}"),
            ("duplicate sends", f"{len(self.duplicate_sends):,}"),
            ("unhandled exceptions", f"{len(self.unhandled_exceptions):,}"),
        ]
        rows.append(
            ("  and duplicates from an invocation stopped between SES accepting and the marker", f"{len(self.unsafe_window_duplicates):,}")
        )
        rows += [(f"time: {phase}", f"{seconds:.1f} s") for phase, seconds in self.seconds.items()]
        return rows

    def table(self) -> str:
        width = max(len(name) for name, _ in self.rows())
        lines = [f"| {'what':<{width}} | figure |", f"|{'-' * (width + 2)}|--------|"]
        lines += [f"| {name:<{width}} | {value} |" for name, value in self.rows()]
        return "\n".join(lines)

    def problems(self) -> list[str]:
        return self.violations + self.lost + self.duplicate_sends + self.unhandled_exceptions


@contextmanager
def quiet_powertools() -> Iterator[None]:
    """Warnings and errors only from the functions' loggers, and no EMF metrics on stdout."""
    values = {"POWERTOOLS_LOG_LEVEL": "CRITICAL", "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_TRACE_DISABLED": "true"}
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class Run:
    """The stack and the simulated Lambda service for one run. DynamoDB Local must be running at `endpoint`."""

    def __init__(self, config: Config, endpoint: str) -> None:
        self.config = config
        self.endpoint = endpoint
        self.report = Report(config)
        self.deadline = Deadline()
        self.injector = FaultInjector(
            config.fault_rate,
            config.seed,
            unprocessed_rate=config.unprocessed_rate,
            exhausted_rate=config.exhausted_rate,
            deadline=self.deadline,
        )
        self.crashing: list[Crashing] = []
        self.lock = threading.Lock()
        self.trace: list[tuple[float, int, str, str, str]] = []

    # -- setup ------------------------------------------------------------------------------------

    @contextmanager
    def stack(self) -> Iterator[None]:
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = self.endpoint
        clients.reset()
        names = create_tables_from_template(["DirectoryTable", "DecisionsTable", "IdempotencyTable"])
        self.tables = names
        env = {
            "DIRECTORY_TABLE": names["DirectoryTable"],
            "DECISIONS_TABLE": names["DecisionsTable"],
            "IDEMPOTENCY_TABLE": names["IdempotencyTable"],
            "MAIL_BUCKET": BUCKET,
            "FILTER_FROM_ADDRESS": FILTER_FROM,
            "POWERTOOLS_SERVICE_NAME": "csp-mail-filter",
            "POWERTOOLS_METRICS_NAMESPACE": "CspMailFilter",
        }
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        passthrough = {"core": {"passthrough": {"urls": [re.escape(self.endpoint) + ".*"], "services": []}}}
        moto_ses_limit = moto_ses.RECIPIENT_LIMIT
        # moto adds the To and Cc header addresses to the envelope it is given before checking SES's 50,
        # so a message to 30 allowed recipients counts 60 there; SES itself counts the envelope once.
        moto_ses.RECIPIENT_LIMIT = 200
        try:
            with mock_aws(config=passthrough), quiet_powertools():
                clients.reset()
                self.s3 = boto3.client("s3")
                self.sqs = boto3.client("sqs")
                self.dynamodb = boto3.client("dynamodb")
                self.s3.create_bucket(Bucket=BUCKET)
                boto3.client("sesv2").create_email_identity(EmailIdentity="vendor.example")
                redrive = template()["Resources"]["OutboundQueue"]["Properties"]["RedrivePolicy"]
                self.max_receives = int(redrive["maxReceiveCount"])
                dlq = self.sqs.create_queue(QueueName="outbound-dlq")["QueueUrl"]
                dlq_arn = self.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
                self.queue = self.sqs.create_queue(
                    QueueName="outbound",
                    Attributes={
                        "VisibilityTimeout": str(self.config.visibility_seconds),
                        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": self.max_receives}),
                    },
                )["QueueUrl"]
                self.queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
                self.dlq = dlq
                for service in ("dynamodb", "s3", "sesv2"):
                    self.injector.attach(clients.client(service))
                yield
        finally:
            moto_ses.RECIPIENT_LIMIT = moto_ses_limit
            clients.reset()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            delete_tables(names.values(), client=boto3.client("dynamodb", endpoint_url=self.endpoint))

    def import_directory(self, records: list[dict[str, Any]]) -> None:
        from mailfilter_cli.directory_ops import import_directory  # noqa: PLC0415

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "directory.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
            with self.injector.pause():
                import_directory(path, self.tables["DirectoryTable"])

    def gateway_environment(self, index: int) -> ModuleType:
        module = load_module(ROOT / "functions" / "outbound_gateway" / "app.py")
        gateway, _ = module.build()
        gateway.mailer = Traced(gateway.mailer, self.trace, index)
        gateway.ledger = Traced(gateway.ledger, self.trace, index)
        rate, unsafe, seed = self.config.crash_rate, self.config.unsafe_crash_rate, self.config.seed * 1000 + index
        wrapped = [
            ("mailer", Crashing(gateway.mailer, crash_rate=rate, seed=seed, deadline=self.deadline, before=("send",))),
            ("quarantine", Crashing(gateway.quarantine, crash_rate=rate, seed=seed + 1, deadline=self.deadline, before=("put",))),
            # the finish writes the records and "done" together; a mark records a send between two sends
            (
                "ledger",
                Crashing(gateway.ledger, crash_rate=rate, seed=seed + 3, deadline=self.deadline, before=("finish",), after=("mark",)),
            ),
        ]
        if unsafe:
            unsafe_mailer = Crashing(wrapped[0][1], crash_rate=unsafe, seed=seed + 4, deadline=self.deadline, after=("send",))
            self.unsafe = getattr(self, "unsafe", [])
            self.unsafe.append(unsafe_mailer)
            wrapped[0] = ("mailer", unsafe_mailer)
        for name, wrapper in wrapped:
            setattr(gateway, name, wrapper)
            self.crashing.append(wrapper)
        handle = gateway.handle

        def counted(body: str, **kwargs: Any) -> dict[str, Any]:
            try:
                return handle(body, **kwargs)
            except Exception as error:
                cause = getattr(error, "code", None) or type(error.__cause__ or error).__name__
                with self.lock:
                    self.report.record_failures[f"{type(error).__name__}: {cause}"] += 1
                raise

        gateway.handle = counted
        return module

    # -- outbound ---------------------------------------------------------------------------------

    def run_outbound(self, messages: list[Outbound], progress: Any = None) -> None:
        started = last_progress = time.monotonic()
        deleted = 0
        backlog = iter(range(0, len(messages), 10))

        def top_up() -> None:
            """The vendor's applications keep the queue supplied; moto's queue slows down when it holds thousands."""
            with self.injector.pause():
                while self._in_queue() < QUEUE_WINDOW:
                    start = next(backlog, None)
                    if start is None:
                        return
                    batch = messages[start : start + 10]
                    entries = [{"Id": str(i), "MessageBody": json.dumps(m.request)} for i, m in enumerate(batch)]
                    self.sqs.send_message_batch(QueueUrl=self.queue, Entries=entries)

        environments: list[ModuleType] = [self.gateway_environment(i) for i in range(self.config.workers)]
        free = list(environments)
        rng = random.Random(self.config.seed + 2)
        running: dict[Future, tuple[ModuleType, list[dict[str, Any]], bool]] = {}
        with ThreadPoolExecutor(max_workers=self.config.workers) as pool:
            while True:
                done = [f for f in running if f.done()]
                for future in done:
                    environment, records, primary = running.pop(future)
                    free.append(environment)
                    failed = future.result()
                    if primary:
                        handles = [
                            {"Id": str(i), "ReceiptHandle": r["receiptHandle"]}
                            for i, r in enumerate(records)
                            if r["messageId"] not in failed
                        ]
                        if handles:
                            self.sqs.delete_message_batch(QueueUrl=self.queue, Entries=handles)
                            deleted += len(handles)
                if progress and time.monotonic() - last_progress > 30:
                    last_progress = time.monotonic()
                    progress(f"outbound: {deleted:,} of {len(messages):,} done, {self.report.receives:,} receives, {len(running)} running")
                top_up()
                if free:
                    received = self.sqs.receive_message(
                        QueueUrl=self.queue, MaxNumberOfMessages=self.config.batch_size, AttributeNames=["All"]
                    ).get("Messages", [])
                    if received:
                        self.report.receives += len(received)
                        records = [self._sqs_record(m) for m in received]
                        copies = 2 if len(free) >= 2 and rng.random() < self.config.concurrent_rate else 1
                        for copy in range(copies):
                            environment = free.pop()
                            future = pool.submit(self._invoke_gateway, environment, records)
                            running[future] = (environment, records, copy == 0)
                        self.report.concurrent_invocations += copies - 1
                        continue
                    if not running and self._queue_empty():
                        break
                if running:
                    wait(list(running), timeout=0.05, return_when=FIRST_COMPLETED)
                else:
                    time.sleep(0.05)
        self.report.seconds["outbound"] = time.monotonic() - started

    def _in_queue(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def _queue_empty(self) -> bool:
        return self._in_queue() == 0

    def _sqs_record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": {k: str(v) for k, v in message.get("Attributes", {}).items()},
            "messageAttributes": {},
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": REGION,
        }

    def _invoke_gateway(self, module: ModuleType, records: list[dict[str, Any]]) -> set[str]:
        """One invocation; returns the SQS message ids that go back to the queue."""
        context = Context("csp-mail-filter-OutboundGatewayFunction", self.config.timeout_seconds)
        self.deadline.at = context.deadline
        with self.lock:
            self.report.invocations += 1
        try:
            response = module.lambda_handler({"Records": records}, context)
            return {failure["itemIdentifier"] for failure in response.get("batchItemFailures", [])}
        except LambdaCrash:
            return {r["messageId"] for r in records}
        except Exception:  # every record failed (powertools raises), or the handler itself failed
            return {r["messageId"] for r in records}
        finally:
            self.deadline.at = float("inf")

    # -- inbound ----------------------------------------------------------------------------------

    def run_inbound(self, events: list[Inbound]) -> dict[str, list[Any]]:
        started = time.monotonic()
        with self.injector.pause():
            for event in events:
                self.s3.put_object(Bucket=BUCKET, Key=f"inbound/{event.message_id}", Body=event.raw)
        environments = [load_module(ROOT / "functions" / "inbound_filter" / "app.py") for _ in range(self.config.workers)]
        local = threading.local()
        claimed = iter(environments)
        lock = threading.Lock()
        responses: dict[str, list[Any]] = defaultdict(list)
        rng = random.Random(self.config.seed + 3)
        plan = []
        for event in events:
            plan.append(event)
            if rng.random() < self.config.concurrent_rate:
                plan.append(event)  # SES invoking the same rule twice at once
                self.report.inbound_redelivered += 1

        def invoke(event: Inbound) -> None:
            if not hasattr(local, "module"):
                with lock:
                    local.module = next(claimed)
            context = Context("csp-mail-filter-InboundFilterFunction", 20)
            try:
                response = local.module.lambda_handler(event.event, context)
            except Exception as error:
                response = error
            with lock:
                responses[event.message_id].append(response)

        with ThreadPoolExecutor(max_workers=self.config.workers) as pool:
            list(pool.map(invoke, plan))
            # and once more afterwards for a few: a late redelivery must change nothing
            late = rng.sample(events, min(len(events), max(1, len(events) // 50)))
            self.report.inbound_redelivered += len(late)
            list(pool.map(invoke, late))
        self.report.seconds["inbound"] = time.monotonic() - started
        return responses

    # -- checking ---------------------------------------------------------------------------------

    def sent(self) -> list[tuple[str, str, set[str], Any]]:
        """(token, source, recipients, parsed message) of everything moto's SES accepted."""
        found = []
        token = re.compile(r"\bl(?:out|in)-\d{6}\b")
        for message in ses_backends[ACCOUNT][REGION].sent_messages:
            raw = message.raw_data
            match = token.search(raw)
            recipients = {address.lower() for _, address in getaddresses(list(message.destinations)) if address}
            found.append((match.group(0) if match else "?", message.source, recipients, message_from_string(raw)))
        return found

    def decision_records(self) -> dict[str, dict[str, dict[str, Any]]]:
        """message id -> sort key -> record, for every item of the decisions table."""
        records: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        paginator = self.dynamodb.get_paginator("scan")
        names = {"#pk": "pk", "#sk": "sk", "#action": "action", "#effective": "effective", "#kind": "kind"}
        for page in paginator.paginate(
            TableName=self.tables["DecisionsTable"],
            ProjectionExpression="#pk, #sk, #action, #effective, #kind",
            ExpressionAttributeNames=names,
        ):
            for item in page["Items"]:
                plain = {k: v.get("S") for k, v in item.items()}
                records[plain["pk"].removeprefix("msg#")][plain["sk"]] = plain
        return records

    def quarantined(self) -> dict[str, list[dict[str, Any]]]:
        items: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="quarantine/items/"):
            for entry in page.get("Contents", []):
                item = json.loads(self.s3.get_object(Bucket=BUCKET, Key=entry["Key"])["Body"].read())
                items[item["message_id"].split("#", 1)[0]].append(item)
        return items

    def dead_letters(self) -> set[str]:
        found = set()
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.dlq, MaxNumberOfMessages=10, VisibilityTimeout=600).get("Messages", [])
            if not batch:
                return found
            found.update(json.loads(m["Body"])["message_id"] for m in batch)

    def check(self, outbound: list[Outbound], inbound: list[Inbound], responses: dict[str, list[Any]]) -> Report:
        started = time.monotonic()
        report = self.report
        with self.injector.pause():
            # One more receive moves what has reached maxReceiveCount to the dead-letter queue.
            self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10, VisibilityTimeout=0)
            sent = self.sent()
            records = self.decision_records()
            quarantine = self.quarantined()
            dead = self.dead_letters()
        by_token: dict[str, list[tuple[str, set[str], Any]]] = defaultdict(list)
        for token, source, recipients, message in sent:
            by_token[token].append((source, recipients, message))
        report.messages, report.inbound = len(outbound), len(inbound)
        report.recipients = sum(len(m.expected) for m in outbound)
        report.dead_lettered = len(dead)
        for message in outbound:
            self._check_outbound(message, by_token.get(message.message_id, []), records.get(message.message_id, {}),
                                 quarantine.get(message.message_id, []), message.message_id in dead)  # fmt: skip
        for event in inbound:
            self._check_inbound(event, by_token.get(event.message_id, []), records.get(event.message_id, {}),
                                quarantine.get(event.message_id, []), responses.get(event.message_id, []))  # fmt: skip
        report.faults = self.injector.by_kind()
        report.aws_calls = dict(self.injector.calls)
        for wrapper in self.crashing:
            report.crashes.update(wrapper.crashes)
        report.seconds["check"] = time.monotonic() - started
        return report

    def _check_outbound(
        self,
        m: Outbound,
        sends: list[tuple[str, set[str], Any]],
        records: dict[str, dict[str, Any]],
        kept: list[dict[str, Any]],
        dead: bool,
    ) -> None:
        report, mid = self.report, m.message_id
        sender = m.request["from"]
        allowed_counts: Counter[str] = Counter()
        group_counts: Counter[tuple[str | None, frozenset[str]]] = Counter()
        groups = m.groups()
        customers = set(m.expected)
        for source, recipients, message in sends:
            if source == sender:
                for recipient in recipients:
                    if recipient not in m.allowed:
                        report.violations.append(f"{mid}: {recipient} received the message; the rules say {m.expected.get(recipient)}")
                    allowed_counts[recipient] += 1
            elif source == FILTER_FROM:
                key = (message["X-CSP-Mail-Filter-Customer"], frozenset(recipients))
                if key not in groups or recipients & customers:
                    report.violations.append(f"{mid}: a partner notice went to {sorted(recipients)} for {key[0]}, not expected")
                group_counts[key] += 1
            else:
                report.violations.append(f"{mid}: sent from {source}")
        duplicates = [r for r, n in allowed_counts.items() if n > 1] + [f"notice {k[0]}" for k, n in group_counts.items() if n > 1]
        if duplicates:
            if self._stopped_between_send_and_marker(mid):
                report.unsafe_window_duplicates.append(f"{mid}: sent more than once to {duplicates[:3]}")
            else:
                report.duplicate_sends.append(f"{mid}: sent more than once to {duplicates[:3]}")
                if os.environ.get("RELIABILITY_TRACE"):
                    for entry in (e for e in self.trace if e[2] == mid):
                        print("trace", entry, file=sys.stderr)
        for recipient, expected in m.expected.items():
            record = records.get(f"decision#{recipient}")
            if record is not None and record["action"] != expected.action:
                report.violations.append(f"{mid}: {recipient} recorded {record['action']}, the rules say {expected.action}")
        if dead:
            return  # in the dead-letter queue, its request intact; whatever it sent was checked above
        missing = [r for r in m.allowed if allowed_counts[r] == 0]
        missing += [f"notice {k[0]}" for k in groups if group_counts[k] == 0]
        kept_recipients = {r for item in kept for r in item["recipients"]}
        missing += [f"quarantine {r}" for r in m.blocked - kept_recipients]
        missing += [f"record {r}" for r in m.expected if f"decision#{r}" not in records]
        if missing:
            report.lost.append(f"{mid}: processed but missing {missing[:3]} ({len(missing)} in all)")

    def _stopped_between_send_and_marker(self, mid: str) -> bool:
        """Did an invocation die after SES accepted a send of `mid` and before that send's marker was written?

        That is the one window exactly-once cannot close (SES takes no idempotency key): the
        retry cannot know whether the send went out, and sends it again. A send's marker is a
        mark, or for the last send of a message the finish (which writes it with the records).
        """
        last_send_ok: dict[int, bool] = {}
        for _, environment, key, what, outcome in self.trace:
            if key != mid:
                continue
            if what.startswith("Mailer.send"):
                last_send_ok[environment] = outcome == "ok"
            elif what.startswith(("MessageLedger.mark", "MessageLedger.finish")):
                if last_send_ok.get(environment) and outcome != "ok":
                    return True
                last_send_ok[environment] = False
            elif what.startswith("MessageLedger.claim") and last_send_ok.get(environment):
                return True  # the environment's next invocation began: the one before stopped after an unmarked send
        return any(last_send_ok.values())  # a send with no marker call after it: stopped right there

    def _check_inbound(
        self,
        e: Inbound,
        sends: list[tuple[str, set[str], Any]],
        records: dict[str, dict[str, Any]],
        kept: list[dict[str, Any]],
        responses: list[Any],
    ) -> None:
        report, mid = self.report, e.message_id
        for response in responses:
            if not isinstance(response, dict) or "disposition" not in response:
                report.unhandled_exceptions.append(f"{mid}: {type(response).__name__}: {str(response)[:200]}")
        expected_groups = {frozenset(x.contacts) for x in e.expected.values() if x.action == "reroute"}
        forwards: Counter[frozenset[str]] = Counter()
        for source, recipients, _ in sends:
            key = frozenset(recipients)
            if source != FILTER_FROM or key not in expected_groups:
                report.violations.append(f"{mid}: inbound forwarded to {sorted(recipients)}; the rules say {e.expected}")
            forwards[key] += 1
        if any(n > 1 for n in forwards.values()):
            report.duplicate_sends.append(f"{mid}: forwarded more than once: {forwards}")
        allowed = any(x.action == "allow" for x in e.expected.values())
        deferred = any(k.startswith("deferred#") for k in records)
        if deferred:
            report.inbound_deferred += 1
        for response in responses:
            if isinstance(response, dict) and response.get("disposition") == "CONTINUE" and not allowed:
                report.violations.append(f"{mid}: CONTINUE (desks receive it) though no desk is allowed: {e.expected}")
        for desk, expected in e.expected.items():
            record = records.get(f"decision#{desk}")
            if record is not None and record["action"] != expected.action:
                report.violations.append(f"{mid}: {desk} recorded {record['action']}, the rules say {expected.action}")
        if deferred:
            return
        missing = [f"record {d}" for d in e.expected if f"decision#{d}" not in records]
        missing += [f"forward {sorted(g)}" for g in expected_groups if forwards[g] == 0]
        blocked = {d for d, x in e.expected.items() if x.action == "block"}
        kept_desks = {r for item in kept for r in item["recipients"]}
        missing += [f"quarantine {d}" for d in blocked - kept_desks]
        if missing:
            report.lost.append(f"{mid}: neither handled nor deferred: missing {missing[:3]}")


def run(config: Config, endpoint: str, *, progress: Any = None) -> Report:
    """The whole run; `endpoint` is a running DynamoDB Local."""
    started = time.monotonic()
    records, customers = generate_directory(config.customers_per_cloud)
    outbound = generate_outbound(config.messages, config.seed, customers, config.customers_per_cloud, config.max_recipients)
    inbound = generate_inbound(config.inbound, config.seed, customers, config.customers_per_cloud)
    the_run = Run(config, endpoint)
    # single_metric prints EMF lines to stdout whatever POWERTOOLS_METRICS_DISABLED says.
    with the_run.stack(), open(os.devnull, "w") as null, redirect_stdout(null):
        the_run.import_directory(records)
        if progress:
            progress(f"directory: {len(customers)} customers in {len(CLOUDS)} clouds; {len(outbound)} send requests")
        the_run.run_outbound(outbound, progress)
        if progress:
            progress(f"outbound done in {the_run.report.seconds['outbound']:.0f} s; {len(inbound)} inbound events")
        responses = the_run.run_inbound(inbound)
        report = the_run.check(outbound, inbound, responses)
    report.seconds["total"] = time.monotonic() - started
    return report
