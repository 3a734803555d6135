"""A host taken apart: subdomains, registered label, public suffix and its kind."""

from mailwarden.domains.names import split_host


def test_an_icann_suffix() -> None:
    name = split_host("www.castlegatepolymers.co.uk")
    assert name is not None
    assert (name.label, name.suffix, name.suffix_kind, name.subdomains) == \
        ("castlegatepolymers", "co.uk", "icann", ("www",))
    assert name.registrable == "castlegatepolymers.co.uk"
    assert name.parents == ["www.castlegatepolymers.co.uk", "castlegatepolymers.co.uk"]


def test_second_level_names_sold_to_anyone_are_suffixes() -> None:
    name = split_host("ashdownpryce.uk.com")
    assert name is not None and (name.label, name.suffix, name.suffix_kind) == ("ashdownpryce", "uk.com", "registry")


def test_shared_platforms_give_each_customer_a_name() -> None:
    zendesk = split_host("support.bramwellfreight.zendesk.com")
    blob = split_host("bramwellfreight0326.blob.core.windows.net")
    assert zendesk is not None and (zendesk.label, zendesk.suffix_kind) == ("bramwellfreight", "platform")
    assert blob is not None and (blob.label, blob.suffix) == ("bramwellfreight0326", "blob.core.windows.net")


def test_a_platforms_own_name_is_an_ordinary_domain() -> None:
    name = split_host("github.io")
    assert name is not None and (name.label, name.suffix) == ("github", "io")


def test_unicode_and_punycode_give_the_same_parts() -> None:
    written = split_host("veltrо-electronics.de")
    encoded = split_host("xn--veltr-electronics-3co.de")
    assert written == encoded
    assert written is not None and written.label_unicode == "veltrо-electronics"


def test_nothing_registrable_is_none() -> None:
    for host in ("", "co.uk", "localhost", "192.0.2.1", "[2001:db8::1]", "a" * 300):
        assert split_host(host) is None
