"""Links: what the reader is shown against where a link goes."""

from mailbuilder import build, ids

from mailwarden.analyzers import urls
from mailwarden.pipeline import Context


def analyze(message):  # type: ignore[no-untyped-def]
    return ids(urls.analyze(message, Context()))


def html_message(html: str, body: str = "See the message in HTML.") -> object:
    return build(html=html, body=body)


def test_anchor_text_showing_another_site() -> None:
    message = html_message('<a href="https://docs-delivery-center.example/inv">https://portal.globex.com/inv/1</a>')
    found = urls.analyze(message, Context())  # type: ignore[arg-type]
    assert [s.id for s in found] == ["url.deceptive_anchor"]
    assert found[0].evidence["shown"] == "portal.globex.com"


def test_anchor_text_that_matches_its_link_is_fine() -> None:
    assert analyze(html_message('<a href="https://www.globex.com/a">www.globex.com</a>')) == set()


def test_ip_literal_shortener_and_userinfo() -> None:
    found = analyze(build(body="Go to http://192.0.2.7/login or https://bit.ly/x1 or "
                               "https://www.paypal.com@evil.example/"))
    assert {"url.ip_host", "url.shortener", "url.userinfo"} <= found


def test_cloud_storage_page_with_a_credential_request() -> None:
    found = analyze(build(body="Please verify your account at "
                               "https://globexfreight0326.blob.core.windows.net/index.html#a@b.example"))
    assert {"url.free_hosting", "url.cloud_hosted_login"} <= found


def test_cloud_storage_link_without_a_credential_request_is_only_noted() -> None:
    found = analyze(build(body="Our brochure: https://brochures.s3.amazonaws.com/2026.pdf"))
    assert found == {"url.free_hosting"}


def test_open_redirect_to_another_site() -> None:
    found = analyze(build(body="https://www.google.com/url?q=https://evil.example/login&sa=D"))
    assert "url.open_redirect" in found


def test_punycode_host() -> None:
    assert "url.punycode_host" in analyze(build(body="https://xn--pypal-4ve.com/signin"))


def test_plain_links_to_an_ordinary_site_raise_nothing() -> None:
    assert analyze(build(body="Minutes are at https://wiki.example.org/meetings/2026-03")) == set()
