"""What a message is about, and which source said so: declarations are trusted only from the vendor."""

from __future__ import annotations

from mailfilter.policy.classify import classify, classify_desk
from mailfilter.policy.config import load_policy
from mailfilter.vocabulary.message import Declaration, Message
from mailfilter.vocabulary.model import Category, Cloud, Direction, Source
from mailfilter.vocabulary.reading import pattern_text
from mailfilter_testkit.directory_samples import outbound

POLICY = load_policy()


def test_send_request_fields_are_trusted_declarations():
    c = classify(outbound("a@x.example", category="subscription", product="Azure", cloud=Cloud.USGOV), POLICY)
    assert (c.category, c.category_source) == (Category.SUBSCRIPTION, Source.REQUEST)
    assert (c.product, c.product_source) == ("azure", Source.REQUEST)
    assert (c.cloud, c.cloud_source) == (Cloud.USGOV, Source.REQUEST)


def test_header_declaration_from_a_vendor_identity_is_trusted():
    message = outbound("a@x.example", category="service-incident", sender="noreply@vendor.example", source=Source.HEADER)
    assert classify(message, POLICY).category_source is Source.HEADER


def test_header_declaration_from_outside_the_vendor_is_ignored():
    message = outbound("a@x.example", category="service-incident", sender="attacker@evil.example", source=Source.HEADER, subject="Hello")
    c = classify(message, POLICY)
    assert (c.category, c.category_source) == (Category.GENERAL, Source.DEFAULT)


def test_sender_address_map_decides_when_nothing_is_declared():
    c = classify(outbound("a@x.example", sender="billing@vendor.example", subject="Service outage"), POLICY)
    assert (c.category, c.category_source) == (Category.SUBSCRIPTION, Source.SENDER_MAP)


def test_subject_patterns_decide_after_the_maps():
    c = classify(outbound("a@x.example", subject="Your Azure invoice for May"), POLICY)
    assert (c.category, c.category_source) == (Category.SUBSCRIPTION, Source.SUBJECT)
    assert (c.product, c.product_source) == ("azure", Source.SUBJECT)


def test_default_is_general_in_the_deployment_cloud():
    c = classify(outbound("a@x.example", subject="Hello"), POLICY.model_copy(update={"default_cloud": Cloud.GERMANY}))
    assert (c.category, c.category_source, c.product) == (Category.GENERAL, Source.DEFAULT, None)
    assert (c.cloud, c.cloud_source) == (Cloud.GERMANY, Source.DEFAULT)


def test_an_unreadable_declared_category_falls_through_to_weaker_evidence():
    c = classify(outbound("a@x.example", category="urgent!!", subject="Planned maintenance"), POLICY)
    assert (c.category, c.category_source) == (Category.OPERATIONAL, Source.SUBJECT)


def test_inbound_headers_are_never_trusted_even_from_a_vendor_address():
    message = Message(
        message_id="m",
        direction=Direction.INBOUND,
        sender="billing@vendor.example",
        recipients=("sales@vendor.example",),
        subject="Hi",
        declarations=(Declaration(source=Source.HEADER, category="service-incident"),),
    )
    assert classify(message, POLICY).category_source is Source.DEFAULT


def test_inbound_desk_decides_the_category_of_each_recipient():
    message = Message("m", Direction.INBOUND, "it@contoso.com", ("billing@vendor.example", "support@vendor.example"), "Question")
    base = classify(message, POLICY)
    assert classify_desk(base, "billing@vendor.example", POLICY).category is Category.SUBSCRIPTION
    assert classify_desk(base, "support@vendor.example", POLICY).category is Category.OPERATIONAL
    assert classify_desk(base, "support@vendor.example", POLICY).category_source is Source.RECIPIENT_MAP
    assert classify_desk(base, "unknown-desk@vendor.example", POLICY) == base


# ---------------------------------------------------------------- every source heard, the most restrictive wins


def test_r2_a_subject_naming_two_categories_is_classified_by_the_most_restrictive():
    c = classify(outbound("a@x.example", subject="Subscription renewal: action required"), POLICY)
    assert (c.category, c.category_source) == (Category.SUBSCRIPTION, Source.SUBJECT)
    assert {(e.kind, e.value, e.source) for e in c.evidence} >= {
        ("category", Category.OPERATIONAL, Source.SUBJECT),
        ("category", Category.SUBSCRIPTION, Source.SUBJECT),
    }


def test_r2_a_declaration_cannot_make_subscription_mail_operational():
    c = classify(outbound("a@x.example", category="operational", subject="Your invoice"), POLICY)
    assert (c.category, c.category_source) == (Category.SUBSCRIPTION, Source.SUBJECT)


def test_r2_the_sender_map_is_heard_beside_a_lower_declaration():
    c = classify(outbound("a@x.example", category="service-incident", sender="billing@vendor.example", subject="Hello"), POLICY)
    assert (c.category, c.category_source) == (Category.SUBSCRIPTION, Source.SENDER_MAP)


def test_a_policy_may_state_another_category_order():
    policy = POLICY.model_copy(
        update={"category_order": [Category.OPERATIONAL, *[c for c in POLICY.category_order if c is not Category.OPERATIONAL]]}
    )
    policy.__dict__.pop("category_rank", None)
    c = classify(outbound("a@x.example", subject="Subscription renewal: action required"), policy)
    assert c.category is Category.OPERATIONAL


def test_every_product_named_is_kept_in_order():
    c = classify(outbound("a@x.example", subject="Announcing Dynamics 365 and Azure news"), POLICY)
    assert c.products == ("azure", "dynamics-365")


def test_r1_a_word_that_mixes_latin_and_cyrillic_letters_is_read_as_the_most_restrictive_category():
    c = classify(outbound("a@x.example", subject="Your inv\u043eice"), POLICY)  # Cyrillic o
    assert c.category is Category.SUBSCRIPTION


def test_encoded_and_hidden_subject_words_are_read_as_written_for_the_reader():
    hidden = ["=?utf-8?b?WW91ciBBenVyZSBzdWJzY3JpcHRpb24gaW52b2ljZQ==?=", "Your In\u200bvoice", "Your i\u0308nvoice",
              "Your \uff49\uff4e\uff56\uff4f\uff49\uff43\uff45", "Your in\u00advoice", "Your Re\u202enewal"]  # fmt: skip
    for subject in hidden:
        assert classify(outbound("a@x.example", subject=pattern_text(subject)), POLICY).category is Category.SUBSCRIPTION, subject
