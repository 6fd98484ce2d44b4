"""What a message is about: category, product and cloud, each with the source that decided it.

Order of evidence: a trusted declaration (an outbound send request's fields, or
headers from a vendor identity), then the address map (the vendor sender
outbound, the vendor desk inbound), then subject patterns, then the default.
"""

from __future__ import annotations

from mailfilter.message import Declaration, Message
from mailfilter.model import Category, Classification, Cloud, Direction, Source
from mailfilter.policy.config import Policy


def _enum_or_none(kind: type[Category] | type[Cloud], value: str | None) -> Category | Cloud | None:
    if value is None:
        return None
    try:
        return kind(value.strip().lower())
    except ValueError:
        return None  # an unreadable declaration is no evidence; weaker sources decide


def trusted_declaration(message: Message, policy: Policy) -> Declaration | None:
    """The declaration, if its source may be believed.

    Send requests come from the vendor's applications through the gateway. A
    header declaration counts only on outbound mail from a vendor identity:
    anyone can write headers on mail they send to the vendor.
    """
    declaration = message.declaration
    if declaration is None:
        return None
    if declaration.source is Source.REQUEST:
        return declaration
    if message.direction is Direction.OUTBOUND and policy.is_vendor_identity(message.sender):
        return declaration
    return None


def classify(message: Message, policy: Policy) -> Classification:
    declared = trusted_declaration(message, policy)
    sender = policy.sender_map.get(message.sender) if message.direction is Direction.OUTBOUND else None

    category, category_source = Category.GENERAL, Source.DEFAULT
    declared_category = _enum_or_none(Category, declared.category) if declared else None
    if declared_category is not None:
        category, category_source = declared_category, declared.source
    elif sender is not None:
        category, category_source = sender.category, Source.SENDER_MAP
    else:
        for pattern, pattern_category in policy.compiled_subjects:
            if pattern.search(message.subject):
                category, category_source = pattern_category, Source.SUBJECT
                break

    product, product_source = None, Source.DEFAULT
    if declared and declared.product and declared.product.strip():
        product, product_source = declared.product.strip().lower(), declared.source
    elif sender is not None and sender.product is not None:
        product, product_source = sender.product, Source.SENDER_MAP
    else:
        for pattern, pattern_product in policy.compiled_products:
            if pattern.search(message.subject):
                product, product_source = pattern_product, Source.SUBJECT
                break

    cloud, cloud_source = policy.default_cloud, Source.DEFAULT
    declared_cloud = _enum_or_none(Cloud, declared.cloud) if declared else None
    if declared_cloud is not None:
        cloud, cloud_source = declared_cloud, declared.source
    elif sender is not None and sender.cloud is not None:
        cloud, cloud_source = sender.cloud, Source.SENDER_MAP

    return Classification(category, category_source, product, product_source, cloud, cloud_source)


def classify_desk(message_class: Classification, desk_address: str, policy: Policy) -> Classification:
    """Inbound: the vendor desk the customer wrote to overrides the message's category and cloud."""
    desk = policy.desk_map.get(desk_address)
    if desk is None:
        return message_class
    cloud = desk.cloud or message_class.cloud
    return Classification(
        category=desk.category,
        category_source=Source.RECIPIENT_MAP,
        product=message_class.product,
        product_source=message_class.product_source,
        cloud=cloud,
        cloud_source=Source.RECIPIENT_MAP if desk.cloud else message_class.cloud_source,
    )
