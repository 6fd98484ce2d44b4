"""What a message is about: category, product and cloud, each with the source that decided it.

Sources: trusted declarations (an outbound send request's fields, and headers
from a vendor identity), the address map (the vendor sender outbound, the vendor
desk inbound) and every subject pattern that matches. All are heard: the most
restrictive category any of them gives wins, so no source can make mail less
restricted than another source says it is. The cloud is the first declared,
then the sender map's, then the default. Subjects arrive as pattern text
(`mailfilter.vocabulary.reading.pattern_text`), declarations are read the same way.
"""

from __future__ import annotations

from functools import lru_cache

from mailfilter.policy.config import Policy
from mailfilter.vocabulary.message import Declaration, Message
from mailfilter.vocabulary.model import Category, Classification, Cloud, Direction, Evidence, Source
from mailfilter.vocabulary.reading import disguised_words, pattern_text


# Declared values come from a small vocabulary (categories, products, clouds) and reading one
# is a pure function of its text, so each distinct value is read once; the caches are bounded.
@lru_cache(maxsize=1024)
def _declared_text(value: str) -> str:
    return pattern_text(value).lower()


@lru_cache(maxsize=1024)
def _enum_or_none(kind: type[Category] | type[Cloud], value: str | None) -> Category | Cloud | None:
    if value is None:
        return None
    try:
        return kind(_declared_text(value))
    except ValueError:
        return None  # an unreadable declaration is no evidence; other sources decide


def trusted_declarations(message: Message, policy: Policy) -> tuple[Declaration, ...]:
    """The declarations that may be believed.

    Send requests come from the vendor's applications through the gateway. A
    header declaration counts only on outbound mail from a vendor identity:
    anyone can write headers on mail they send to the vendor.
    """
    header_trusted = message.direction is Direction.OUTBOUND and policy.is_vendor_identity(message.sender)
    return tuple(d for d in message.declarations if d.source is Source.REQUEST or header_trusted)


def classify(message: Message, policy: Policy) -> Classification:
    """Every trusted source is heard; the most restrictive category wins (`policy.category_order`)."""
    declared = trusted_declarations(message, policy)
    senders = []
    if message.direction is Direction.OUTBOUND:  # every vendor address the message shows is heard
        addresses = dict.fromkeys((message.sender, *message.identities))
        senders = [policy.sender_map[a] for a in addresses if a in policy.sender_map]
    evidence: list[Evidence] = []

    for declaration in declared:
        category = _enum_or_none(Category, declaration.category)
        if category is not None:
            evidence.append(Evidence("category", category, declaration.source))
    evidence += [Evidence("category", sender.category, Source.SENDER_MAP) for sender in senders]
    evidence += [Evidence("category", c, Source.SUBJECT) for pattern, c in policy.compiled_subjects if pattern.search(message.subject)]
    if disguised_words(message.subject):  # a word no pattern can read is taken at its most restrictive
        evidence.append(Evidence("category", policy.category_order[0], Source.SUBJECT))

    for declaration in declared:
        product = _declared_text(declaration.product or "")
        if product:
            evidence.append(Evidence("product", product, declaration.source))
    evidence += [Evidence("product", sender.product, Source.SENDER_MAP) for sender in senders if sender.product is not None]
    evidence += [Evidence("product", p, Source.SUBJECT) for pattern, p in policy.compiled_products if pattern.search(message.subject)]

    for declaration in declared:
        cloud = _enum_or_none(Cloud, declaration.cloud)
        if cloud is not None:
            evidence.append(Evidence("cloud", cloud, declaration.source))
    evidence += [Evidence("cloud", sender.cloud, Source.SENDER_MAP) for sender in senders if sender.cloud is not None]

    categories = [e for e in evidence if e.kind == "category"]
    if categories:
        winner = min(categories, key=lambda e: policy.category_rank[e.value])  # the first of the most restrictive
        category, category_source = Category(winner.value), winner.source
    else:
        category, category_source = Category.GENERAL, Source.DEFAULT
    products = [e for e in evidence if e.kind == "product"]
    product, product_source = (products[0].value, products[0].source) if products else (None, Source.DEFAULT)
    clouds = [e for e in evidence if e.kind == "cloud"]
    cloud, cloud_source = (Cloud(clouds[0].value), clouds[0].source) if clouds else (policy.default_cloud, Source.DEFAULT)
    return Classification(
        category,
        category_source,
        product,
        product_source,
        cloud,
        cloud_source,
        tuple(dict.fromkeys(e.value for e in products)),
        tuple(evidence),
    )


def classify_desk(message_class: Classification, desk_address: str, policy: Policy) -> Classification:
    """Inbound: the vendor desk the customer wrote to decides the category and cloud.

    The desk is the vendor's own routing (docs/security.md): what the customer writes in
    its subject cannot move a message to another desk's treatment.
    """
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
        products=message_class.products,
        evidence=(Evidence("category", desk.category, Source.RECIPIENT_MAP), *message_class.evidence),
    )
