"""URLs in mail: found in running text, normalised, given their registrable domain. Nothing is fetched."""

from __future__ import annotations

import time

import pytest

from mailwarden.urls import (
    Url,
    find_in_text,
    is_ip_literal,
    normalize,
    organizational_domain,
    public_suffix,
    registrable_domain,
    to_ascii_host,
)


def url(raw: str, origin: str = "text", anchor_text: str = "") -> Url:
    found = normalize(raw, origin, anchor_text)
    assert found is not None, raw
    return found


# --- finding -------------------------------------------------------------------------------------

def test_links_in_running_text_without_surrounding_punctuation() -> None:
    text = ("See (http://a.example/x). Also www.b.example, and <https://c.example/y>! "
            "Then \"http://d.example/z?x=1\". Defanged: hxxps://e.example/p")
    assert [u.raw for u in find_in_text(text, "text")] == [
        "http://a.example/x", "www.b.example", "https://c.example/y", "http://d.example/z?x=1",
        "hxxps://e.example/p"]


def test_find_in_text_stops_at_the_limit() -> None:
    text = " ".join(f"https://h{i}.example/" for i in range(50))
    assert len(find_in_text(text, "text", limit=10)) == 10


def test_the_origin_is_kept() -> None:
    [found] = find_in_text("go to https://x.example/", "attachment:invoice.pdf")
    assert found.origin == "attachment:invoice.pdf"


# --- normalising ---------------------------------------------------------------------------------

def test_host_is_lower_case_and_percent_decoded_path_is_decoded() -> None:
    found = url("HTTP://%65xample.COM/%7Euser/a%20b?q=%41")
    assert found.scheme == "http"
    assert found.host == "example.com"
    assert found.path == "/~user/a b"
    assert found.url == "http://example.com/%7Euser/a%20b?q=%41"  # the URL itself stays as sent


def test_unicode_host_in_punycode_and_unicode() -> None:
    found = url("https://Bücher.example/path")
    assert found.host == "xn--bcher-kva.example"
    assert found.host_unicode == "bücher.example"
    assert found.url == "https://xn--bcher-kva.example/path"


def test_punycode_host_also_in_unicode() -> None:
    found = url("http://xn--pypal-4ve.com/login")
    assert found.host == "xn--pypal-4ve.com"
    assert found.host_unicode == "p\u0430ypal.com"  # a Cyrillic a
    assert found.registrable_domain == "xn--pypal-4ve.com"


def test_percent_encoded_unicode_host() -> None:
    assert url("https://b%C3%BCcher.example/").host == "xn--bcher-kva.example"


@pytest.mark.parametrize("raw", ["www.example.org/page", "//example.org/page", "hxxp://example.org/page"])
def test_schemeless_protocol_relative_and_defanged_links_become_http(raw: str) -> None:
    found = url(raw)
    assert found.scheme == "http" and found.registrable_domain == "example.org" and found.path == "/page"


@pytest.mark.parametrize("raw", ["mailto:a@example.com", "cid:part1@x", "javascript:alert(1)", "#top", "",
                                 "http://[broken", "ftp://files.example/", "data:text/html;base64,PGI+"])
def test_what_is_not_a_web_link_is_none(raw: str) -> None:
    assert normalize(raw, "href") is None


def test_userinfo_hides_the_real_host() -> None:
    found = url("http://paypal.com@evil.example:8080/login")
    assert found.host == "evil.example"
    assert found.has_userinfo
    assert found.port == 8080
    assert found.url == "http://evil.example:8080/login"


def test_default_ports_are_left_out_of_the_url() -> None:
    assert url("https://example.com:443/").url == "https://example.com/"
    assert url("http://example.com:80/a").url == "http://example.com/a"


@pytest.mark.parametrize("raw, host", [
    ("http://192.0.2.1/a", "192.0.2.1"),
    ("http://0x7f.1/", "0x7f.1"),
    ("http://3232235777/", "3232235777"),
    ("http://[2001:db8::1]/x", "2001:db8::1"),
])
def test_ip_hosts_are_recognised_including_numeric_forms_browsers_accept(raw: str, host: str) -> None:
    found = url(raw)
    assert found.is_ip and found.host == host
    assert found.registrable_domain == host


def test_an_ipv6_url_keeps_its_brackets() -> None:
    assert url("http://[2001:DB8::1]:8080/x").url == "http://[2001:db8::1]:8080/x"


def test_anchor_text_is_whitespace_collapsed() -> None:
    assert url("https://x.example/", "href", "  Click\n  here ").anchor_text == "Click here"


def test_is_ip_literal() -> None:
    assert is_ip_literal("10.0.0.1") and is_ip_literal("[::1]") and is_ip_literal("017700000001")
    assert not is_ip_literal("example.com") and not is_ip_literal("1")


# --- registrable domains (Public Suffix List) ------------------------------------------------------

@pytest.mark.parametrize("host, expected", [
    ("www.example.co.uk", "example.co.uk"),
    ("a.b.c.example.com", "example.com"),
    ("example.com", "example.com"),
    ("invoice-7f3a.blob.core.windows.net", "invoice-7f3a.blob.core.windows.net"),  # private suffix
    ("evil.github.io", "evil.github.io"),
    ("WWW.Example.COM.", "example.com"),
    ("co.uk", "co.uk"),
    ("", ""),
])
def test_registrable_domain(host: str, expected: str) -> None:
    assert registrable_domain(host) == expected


def test_organizational_domain_uses_only_the_icann_section() -> None:
    assert organizational_domain("invoice-7f3a.blob.core.windows.net") == "windows.net"
    assert organizational_domain("mail.example.co.uk") == "example.co.uk"
    assert public_suffix("mail.example.co.uk") == "co.uk"


def test_to_ascii_host_keeps_invalid_names_as_given() -> None:
    assert to_ascii_host("Exa_mple.COM.") == ("exa_mple.com", "exa_mple.com")
    assert to_ascii_host("xn--zz.example") == ("xn--zz.example", "xn--zz.example")
    assert to_ascii_host("") == ("", "")


def test_hosts_longer_than_any_dns_name_are_kept_as_given_and_cheaply() -> None:
    long_unicode = "ü" * 200_000 + ".com"
    long_punycode = "xn--" + "a" * 200_000 + ".com"
    start = time.perf_counter()
    assert to_ascii_host(long_unicode) == (long_unicode, long_unicode)
    assert to_ascii_host(long_punycode) == (long_punycode, long_punycode)
    assert registrable_domain(long_punycode) == long_punycode
    found = url("http://" + long_unicode + "/x")
    assert time.perf_counter() - start < 0.5
    assert found.host == long_unicode
