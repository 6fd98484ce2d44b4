"""`mask_in_text` masks every address of a free text, whatever its form, and leaves text without one alone.

Log lines carry free text that echoes its input (validation errors, SES refusals), so
the masking must find quoted and Unicode local parts, IP-literal domains and addresses
in brackets or with unusual characters, not only the plain dot-atom ones, and it must
stay linear on hostile input.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mailfilter.vocabulary.addresses import mask, mask_in_text

# (address as it appears in the text, how it reads masked, a part of it that must not show)
FORMS = [
    ("john.doe@contoso.com", "j***@contoso.com", "john.doe"),
    ('"john doe"@example.org', '"***@example.org', "john doe"),
    ('"a@b"@contoso.com', '"***@contoso.com', "a@b"),
    ('"jo\\"hn doe"@example.org', '"***@example.org', 'jo\\"hn'),
    ("jürgen@contoso.de", "j***@contoso.de", "jürgen"),
    ("用户@例子.广告", "用***@例子.广告", "用户"),
    ("Jürgen Müller <jürgen.mueller@contoso.de>", "Jürgen Müller <j***@contoso.de>", "jürgen.mueller"),
    ('"Doe, John" <john.doe@contoso.com>', '"Doe, John" <j***@contoso.com>', "john.doe"),
    ("<john.doe@contoso.com>", "<j***@contoso.com>", "john.doe"),
    ("john<doe@contoso.com", "j***@contoso.com", "doe"),
    ("john>doe@contoso.com", "j***@contoso.com", "doe"),
    ("jo(comment)hn@contoso.com", "j***@contoso.com", "comment"),
    ("user%relay.example@contoso.com", "u***@contoso.com", "relay.example"),
    ("john\\ doe@contoso.com", "j***@contoso.com", "doe"),
    ("user@[192.0.2.1]", "u***@[192.0.2.1]", "user"),
    ("user@[IPv6:2001:db8::1]", "u***@[IPv6:2001:db8::1]", "user"),
    ("john.doe@xn--mnchen-3ya.de", "j***@xn--mnchen-3ya.de", "john.doe"),
    ("alice+billing@contoso.com", "a***@contoso.com", "billing"),
    ("john.doe＠contoso.com", "j***＠contoso.com", "john.doe"),
    ("john.doe%40contoso.com", "j***%40contoso.com", "john.doe"),
    ("john@doe@contoso.com", "j***@contoso.com", "doe"),
    ("'john.doe@contoso.com'", "'j***@contoso.com'", "john.doe"),
    ("(john.doe@contoso.com)", "(j***@contoso.com)", "john.doe"),
]


@pytest.mark.parametrize(("address", "masked", "secret"), FORMS, ids=[f"{i:02d}" for i in range(len(FORMS))])
def test_every_address_form_is_masked_in_a_sentence(address, masked, secret):
    shown = mask_in_text(f"refused {address} because it is not allowed")
    assert shown == f"refused {masked} because it is not allowed"
    assert secret not in shown


def test_a_quoted_local_part_is_masked_in_free_text():
    assert mask_in_text('to: "john doe"@example.org') == 'to: "***@example.org'


def test_a_quoted_local_part_with_escaped_quotes_and_an_at_sign_is_masked_whole():
    shown = mask_in_text('refused "a\\"b c@d"@contoso.com, then "x y"@example.org')
    assert shown == 'refused "***@contoso.com, then "***@example.org'


def test_a_quoted_local_part_echoed_by_a_validation_error_is_masked():
    error = "SES receipt event has an unusable address: '\"john doe\"@example.org' has an invalid local part"
    assert mask_in_text(error) == "SES receipt event has an unusable address: '\"***@example.org' has an invalid local part"


def test_a_quoted_local_part_inside_json_is_masked():
    # the JSON string's own quote opens the quoted local part: the escaped quotes are inside it
    assert mask_in_text('{"from": "\\"john doe\\"@example.org"}') == '{"from": "***@example.org"}'


def test_a_unicode_local_part_and_domain_are_masked_in_free_text():
    assert mask_in_text("from jürgen@contoso.de and 用户@例子.广告.") == "from j***@contoso.de and 用***@例子.广告."


def test_an_ip_literal_domain_is_kept_and_the_local_part_masked():
    assert mask_in_text("refused user@[192.0.2.1]: no relay") == "refused u***@[192.0.2.1]: no relay"


def test_an_address_in_angle_brackets_keeps_its_display_name_and_brackets():
    assert mask_in_text("From: Person <person.abc@contoso.com>") == "From: Person <p***@contoso.com>"


def test_addresses_in_a_list_are_each_masked():
    assert mask_in_text("to a@x.example,b@y.example;c@z.example") == "to a***@x.example,b***@y.example;c***@z.example"


def test_a_labelled_address_in_a_validation_error_keeps_its_label():
    text = "1 validation error: value is not valid [input_value='jane.doe@contoso.com', input_type=str]"
    assert mask_in_text(text) == "1 validation error: value is not valid [input_value='j***@contoso.com', input_type=str]"


def test_an_address_split_over_lines_by_an_escaped_header_is_masked():
    text = "'ann@contoso.com\\r\\nBcc: bob@tailspintoys.com' is not an address"
    shown = mask_in_text(text)
    assert "ann@" not in shown
    assert "bob@" not in shown
    assert "b***@tailspintoys.com" in shown


def test_an_at_sign_with_nothing_before_it_is_left_alone():
    assert mask_in_text("meet @ 5pm, ping @handle, An email address must have an @-sign.") == (
        "meet @ 5pm, ping @handle, An email address must have an @-sign."
    )


def test_mask_of_one_address_matches_mask_in_text():
    for address in ["alice@contoso.com", '"john doe"@example.org', "jürgen@contoso.de", "user@[192.0.2.1]"]:
        assert mask_in_text(address) == mask(address)


@given(st.text().filter(lambda text: not any(sign in text for sign in ("@", "\uff20", "\ufe6b", "%40"))))
@example("The message has 2 From headers, not one.")
@example('a "quoted" sentence with (brackets) <and> \\ backslashes % percent')
def test_a_text_without_an_at_sign_comes_back_unchanged(text):
    assert mask_in_text(text) == text


# A local part as free text may carry it: any letter, digit, mark, symbol or punctuation,
# never a space (a space ends the word) and never an at-sign (that would make two addresses).
unicode_local_parts = st.text(
    st.characters(exclude_categories=("Z", "C"), exclude_characters="@\uff20\ufe6b"),
    min_size=1,
    max_size=64,
)
unicode_addresses = st.builds(lambda local, domain: f"{local}@{domain}", unicode_local_parts, st.sampled_from(["contoso.de", "例子.广告"]))


@given(st.one_of(st.emails(), unicode_addresses))
@example("ab@contoso.com")
@example('"ab"@contoso.com')
@example("a%40b@contoso.com")
@example("<ab@contoso.com")
@example("a=')b@contoso.com")
def test_no_generated_address_shows_its_local_part_beyond_its_first_character(address):
    local, _, domain = address.rpartition("@")
    sentence_without_it = f"refused {domain} because"
    shown = mask_in_text(f"refused {address} because")
    assert "***@" in shown
    assert domain in shown
    # A local part that is its first character then asterisks ("0*") reads like its own mask.
    if len(local) > 1 and local not in sentence_without_it and local[1:].strip("*"):
        assert local not in shown


# ---------------------------------------------------------------- hostile and large input

BIG = 200_000


@pytest.mark.parametrize("unit", ['"', "@", "\\", "<", "[", "%4", " ", "\\ "], ids=repr)
def test_a_large_run_of_one_character_without_an_address_comes_back_unchanged(unit):
    text = unit * (BIG // len(unit))
    assert mask_in_text(text) == text


def test_a_large_run_of_at_signs_after_a_word_is_one_masked_address():
    assert mask_in_text("x" + "@" * BIG) == "x***@"
    assert mask_in_text("a@" * (BIG // 2) + "contoso.com") == "a***@contoso.com"


def test_a_large_run_of_quotes_and_at_signs_is_masked_pair_by_pair():
    assert mask_in_text('"@' * (BIG // 2)) == '"***@' * (BIG // 4)


def test_a_large_run_of_escaped_quotes_before_an_at_sign_masks_the_last_quoted_string():
    shown = mask_in_text('\\"' * (BIG // 2) + "@contoso.com")
    assert shown.endswith('\\"***@contoso.com')
    assert len(shown) < BIG + 20


def test_a_large_quoted_local_part_is_masked_whole():
    assert mask_in_text('refused "' + "x y " * (BIG // 4) + '"@example.org.') == 'refused "***@example.org.'


def test_a_large_unquoted_local_part_is_masked_whole():
    assert mask_in_text("a" * BIG + "@contoso.com") == "a***@contoso.com"
    assert mask_in_text("a<(" * (BIG // 3) + "@contoso.com") == "a***@contoso.com"


def test_many_addresses_in_a_large_text_are_all_masked():
    text = " ".join(f"user{i}@contoso.com" for i in range(BIG // 20))
    assert mask_in_text(text) == " ".join(["u***@contoso.com"] * (BIG // 20))
    quoted = ", ".join(f'"user {i}"@example.org' for i in range(BIG // 20))
    assert mask_in_text(quoted) == ", ".join(['"***@example.org'] * (BIG // 20))


def test_a_large_hostile_mix_is_masked_and_keeps_its_length_bounded():
    text = ('x"\\"@' + "a=<'" + '"@[' + "\\ @") * (BIG // 14)
    shown = mask_in_text(text)
    assert "@" in shown
    assert len(shown) <= len(text) + 3 * text.count("@")
