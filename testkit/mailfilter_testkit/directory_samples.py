"""A small directory with one customer in every segment, in each cloud, for the policy tests."""

from __future__ import annotations

from mailfilter.directory.memory import InMemoryDirectory
from mailfilter.directory.records import CustomerRecord, PartnerRecord
from mailfilter.vocabulary.message import Declaration, Message
from mailfilter.vocabulary.model import Cloud, Direction, Source

UNKNOWN = "someone@stranger.example"
NO_CSP = "it@direct-only.example"  # a direct customer without a partner
CSP_ONLY = "it@csp-only.example"  # partner alpha owns every subscription
CSP_AND_DIRECT = "it@csp-and-direct.example"  # alpha owns azure and microsoft-365; buys dynamics-365 directly


def partner_contact(cloud: Cloud) -> str:
    return f"desk-{cloud.value}@alpha.example"


def records(cloud: Cloud) -> list[PartnerRecord | CustomerRecord]:
    return [
        PartnerRecord(kind="partner", cloud=cloud, partner_id="alpha", name="Alpha Partners", contacts=[partner_contact(cloud)]),
        CustomerRecord(kind="customer", cloud=cloud, tenant_id=f"direct-{cloud}", name="Direct Only", domains=["direct-only.example"]),
        CustomerRecord(
            kind="customer",
            cloud=cloud,
            tenant_id=f"csp-only-{cloud}",
            name="CSP Only",
            domains=["csp-only.example"],
            csp=[{"partner_id": "alpha", "products": []}],
        ),
        CustomerRecord(
            kind="customer",
            cloud=cloud,
            tenant_id=f"both-{cloud}",
            name="CSP And Direct",
            domains=["csp-and-direct.example"],
            direct_products=["dynamics-365"],
            csp=[{"partner_id": "alpha", "products": ["azure", "microsoft-365"]}],
        ),
    ]


def directory_in_every_cloud() -> InMemoryDirectory:
    return InMemoryDirectory([record for cloud in Cloud for record in records(cloud)])


def outbound(
    *recipients: str,
    category: str | None = None,
    product: str | None = None,
    cloud: Cloud | None = None,
    subject: str = "",
    sender: str = "apps@vendor.example",
    source: Source = Source.REQUEST,
) -> Message:
    return Message(
        message_id="test-message",
        direction=Direction.OUTBOUND,
        sender=sender,
        recipients=tuple(recipients),
        subject=subject,
        declarations=(Declaration(source=source, category=category, product=product, cloud=cloud.value if cloud else None),),
    )
