"""HTML bodies: the text a reader sees, and the links, forms and image maps in them. Nothing runs."""

from __future__ import annotations

import time

from mailwarden.html import MAX_DEPTH, parse_html


def test_text_without_scripts_styles_head_or_templates() -> None:
    document = parse_html(
        "<html><head><title>Your account</title><style>.x { color: red }</style>"
        "<script>var secret = 1;</script></head>"
        "<body><noscript>enable js</noscript><template><p>hidden</p></template>"
        "<h1>Hello&nbsp;Jane</h1><p>Your   invoice\n is <b>ready</b>.</p>"
        "<script>document.location = 'https://evil.example/'</script></body></html>"
    )
    assert document.text == "Hello Jane Your invoice is ready ."
    assert document.title == "Your account"
    assert document.scripts == ("var secret = 1;", "document.location = 'https://evil.example/'")


def test_entities_are_decoded() -> None:
    assert parse_html("<p>Gr&uuml;&szlig;e &amp; &#8364;5 &lt;ok&gt;</p>").text == "Grüße & €5 <ok>"


def test_links_with_the_text_the_reader_sees() -> None:
    document = parse_html(
        '<a href="https://login.evil.example/">https://<b>portal</b>.office.com</a>'
        '<a href="mailto:x@example.com">mail us</a><a name="anchor">no href</a>'
    )
    assert [(link.kind, link.href, " ".join(link.text.split())) for link in document.links] == [
        ("href", "https://login.evil.example/", "https:// portal .office.com"),
        ("href", "mailto:x@example.com", "mail us"),
    ]


def test_forms_password_fields_and_image_maps() -> None:
    document = parse_html(
        '<form action="https://collect.evil.example/p" method="post">'
        '<input type="text" name="u"><input type="PASSWORD" name="p"></form>'
        '<img usemap="#m"><map name="m"><area shape="rect" href="https://map.evil.example/" alt="Open"></map>'
    )
    assert document.has_form and document.has_password_input
    assert [(link.kind, link.href, link.text) for link in document.links] == [
        ("form", "https://collect.evil.example/p", ""),
        ("area", "https://map.evil.example/", "Open"),
    ]


def test_no_form_no_password() -> None:
    document = parse_html("<p>plain</p>")
    assert not document.has_form and not document.has_password_input and document.links == ()


def test_meta_refresh_is_noted() -> None:
    document = parse_html('<meta http-equiv="Refresh" content="0; url=https://evil.example/">')
    assert document.meta_refresh == "0; url=https://evil.example/"


def test_links_stop_at_max_links() -> None:
    document = parse_html("".join(f'<a href="https://h{i}.example/">{i}</a>' for i in range(50)), max_links=10)
    assert len(document.links) == 10


def test_broken_markup_is_tolerated() -> None:
    document = parse_html("<p>one<div>two</p></span><a href='https://x.example/'>three<<>>")
    assert "one" in document.text and "two" in document.text and "three" in document.text
    assert [link.href for link in document.links] == ["https://x.example/"]


def test_fragments_and_empty_input() -> None:
    assert parse_html("").text == ""
    assert parse_html("just text").text == "just text"


def test_deep_nesting_is_flattened_quickly_keeping_text_and_links() -> None:
    depth = 200_000
    start = time.perf_counter()
    document = parse_html("<div>" * depth + "deep <a href='https://deep.example/'>link</a>" + "</div>" * depth)
    assert time.perf_counter() - start < 2
    assert document.text == "deep link"
    assert [link.href for link in document.links] == ["https://deep.example/"]


def test_nesting_below_the_cap_is_left_alone() -> None:
    html = "<div>" * (MAX_DEPTH - 1) + "<span>x</span>" + "</div>" * (MAX_DEPTH - 1)
    assert parse_html(html).text == "x"
