"""HTML bodies: the text a reader sees, and the links, forms and image maps in them. Nothing runs."""

from __future__ import annotations

import time

from mailwarden.analyzers.content import HIDDEN_TEXT_ALLOWANCE
from mailwarden.html import MAX_CSS_SELECTORS, MAX_DEPTH, MAX_STYLESHEET_CHARS, parse_html


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


# Hidden text: what a filter reads but the reader never sees (content.hidden_text counts it).

NEWSLETTER = "<p>" + "Our autumn issue: twelve recipes, three interviews and the new garden calendar. " * 5 + "</p>"


def hidden(html: str) -> int:
    return parse_html(html).hidden_text_chars


def test_text_hidden_by_inline_styles_counts_once() -> None:
    assert hidden("<p>shown</p><div style='DISPLAY: NONE !important'>twelve chars</div>") == len("twelve chars")
    assert hidden("<div style='display:none'><span style='visibility:hidden'>inner</span> outer</div>") == len(
        "inner outer")
    assert hidden("<span style='opacity:0'>a</span><span style='max-height:0px;overflow:hidden'>b</span>") == 2
    assert hidden("<p style='color:red;margin:0'>shown</p>") == 0


def test_text_hidden_by_a_class_rule() -> None:
    html = "<style>.x7 { display: none }</style><p>shown</p><div class='x7 other'>hidden text</div>"
    assert hidden(html) == len("hidden text")
    assert parse_html(html).text == "shown hidden text"  # the filter still reads it


def test_text_hidden_by_an_id_rule_an_element_class_and_a_selector_list() -> None:
    css = "<style>p.note, #legal { visibility: hidden; } td > .fine { font-size: 0 }</style>"
    html = (f"{css}<p class='note'>note</p><div class='note'>shown</div><div id='legal'>legal</div>"
            "<table><tr><td><span class='fine'>fine</span></td></tr></table><span class='fine'>shown</span>")
    assert hidden(html) == len("note") + len("legal") + len("fine")


def test_rules_in_comments_or_with_other_selectors_are_not_guessed() -> None:
    css = ("<style><!-- /* .a { display:none } */ [data-x] .b { display:none } .c:hover { display:none } "
           ".d + .e { display:none } --></style>")
    assert hidden(f"{css}<p class='a'>a</p><p data-x><span class='b'>b</span></p><p class='c'>c</p>") == 0


def test_text_moved_far_off_screen() -> None:
    css = "<style>.skip { position: absolute; left: -9999px } .logo { text-indent: -999em }</style>"
    assert hidden(f"{css}<a class='skip' href='#main'>skip to content</a><h1 class='logo'>Brand</h1>") == len(
        "skip to content") + len("Brand")
    assert hidden("<p style='margin-left:-12000px'>gone</p><p style='padding-left:400em'>gone</p>") == 8
    # ordinary small offsets hide nothing: hanging indents, nudges, a -20px margin
    assert hidden("<li style='text-indent:-1em'>item</li><div style='position:relative;left:-12px'>x</div>"
                  "<div style='margin-left:-20px'>y</div><div style='position:static;left:-9999px'>z</div>") == 0


def test_everything_after_a_huge_vertical_offset_is_below_the_fold() -> None:
    # the lure shows at the top; a copied newsletter is pushed 470,500px down for filters to read
    lure = "<a href='https://evil.example/'><img src='https://cdn.example/lure.png'></a>"
    html = (f"<style>.k2 {{ margin-top: 470500px; /* adjust */ }}</style>{lure}"
            f"<div class='k2'>replace here</div>{NEWSLETTER}")
    assert hidden(html) == len("replace here") + len(" ".join(NEWSLETTER[3:-4].split()))
    inline = f"{lure}<div style='margin-top:470500px'>{NEWSLETTER}</div>"
    assert hidden(inline) == len(" ".join(NEWSLETTER[3:-4].split()))


def test_a_spacer_hundreds_of_screens_high_pushes_what_follows() -> None:
    css = "<style>.w { display: flex; flex-direction: column; height: 2000vh } .s { flex-grow: 2000 }</style>"
    html = f"{css}<p>Open the attachment</p><div class='w'><div class='s'></div></div>{NEWSLETTER}"
    assert hidden(html) == len(" ".join(NEWSLETTER[3:-4].split()))
    assert hidden(f"<p>top</p><span style='display:block;height:5000px'></span>{NEWSLETTER}") > 300
    # a full-screen hero or an ordinary spacer is not a fold
    assert hidden(f"<div style='min-height:100vh'>hero</div><div style='height:2000px'></div>{NEWSLETTER}") == 0
    # nor is a spacer inside hidden content, or one taken out of the flow
    assert hidden(f"<div style='display:none'><div style='height:9000px'></div>ab</div>{NEWSLETTER}") == 2
    assert hidden(f"<div style='position:absolute;height:9000px'></div>{NEWSLETTER}") == 0
    assert hidden(f"<div style='display:none;height:9000px'>ab</div>{NEWSLETTER}") == 2


def test_a_marketing_preheader_stays_under_the_allowance() -> None:
    # a short hidden summary padded with zero-width joiners and spaces so mail apps show no body text after it
    css = ("<style>.preheader { display: none !important; max-height: 0; overflow: hidden; mso-hide: all }"
           "</style>")
    summary = "Autumn sale: 30% off every coat and boot until Sunday, free returns on all orders."
    html = f"{css}<div class='preheader'>{summary}{'&#847;&zwnj;&nbsp;' * 150}</div>{NEWSLETTER}"
    assert hidden(html) == len(summary) < HIDDEN_TEXT_ALLOWANCE
    # the same padding garbled by a template saved in the wrong charset (UTF-8 read as windows-1252)
    garbled = f"<div style='display:none'>{summary}{'&Iacute;&#143; &acirc;&#128;&#140; &nbsp;' * 150}</div>"
    assert hidden(garbled) == len(summary)


def test_responsive_variants_hidden_by_media_queries_do_not_count() -> None:
    # the same content twice, one copy for phones and one for desktops; each hides on the other
    long = "Track your parcel, change the delivery day or choose a pickup point near you. " * 4
    css = ("<style>.mobile-only { display: none; max-height: 0; overflow: hidden }"
           "@media only screen and (max-width: 480px) {"
           "  .mobile-only { display: block !important; max-height: none !important }"
           "  .desktop-only { display: none !important } }</style>")
    html = (f"{css}<div class='desktop-only'>{long}</div><div class='mobile-only'>{long}</div>"
            f"<table class='mobile-only' style='display:none'><tr><td>{long}</td></tr></table>")
    assert hidden(html) == 0
    # a print style sheet or a rule only for some screens never hides anything either
    assert hidden(f"<style media='print'>.a {{ display: none }}</style><p class='a'>{long}</p>") == 0
    # but a query without a condition applies everywhere
    assert hidden(f"<style>@media only screen {{ .a {{ display: none }} }}</style><p class='a'>{long}</p>") == len(
        long.strip())
    assert hidden(f"<style media='screen'>.a {{ display: none }}</style><p class='a'>{long}</p>") == len(long.strip())


def test_font_size_zero_of_a_layout_hides_only_text_no_descendant_resizes() -> None:
    # MJML and similar builders put font-size:0 on cells to close the gaps between inline-block columns
    column = ("<div style='font-size:0px;display:inline-block;width:100%'><table><tr><td>"
              "<div style='font-family:Arial;font-size:14px'>" + NEWSLETTER + "</div></td></tr></table></div>")
    assert hidden(f"<table><tr><td style='direction:ltr;font-size:0px;padding:20px'>{column}</td></tr></table>") == 0
    sized_by_class = "<style>.txt { font-size: 13px }</style>"
    assert hidden(f"{sized_by_class}<div style='font-size:0'><p class='txt'>shown</p>stray</div>") == len("stray")
    assert hidden("<div style='font-size:0'><font size='2'>shown</font></div>") == 0
    # text set in a zero font size, word by word between visible letters, is hidden
    salad = "".join(f"{c}<span style='font-size:0px'>word{i}</span>" for i, c in enumerate("Invoice"))
    assert hidden(f"<div style='font-size:12pt'>{salad}</div>") == len("word0") * 7


def test_planted_marks_are_not_trusted() -> None:
    assert hidden("<div data-mailwarden-hidden='' data-mailwarden-pusher='own'>" + NEWSLETTER + "</div>") == 0


def test_hostile_style_sheets_are_read_within_bounds() -> None:
    body = "".join(f"<div class='c{i}' id='i{i}'>text {i}</div>" for i in range(3000))
    sheets = [
        "".join(f".c{i} {{ display: none }}" for i in range(100_000)),  # far more rules than are read
        "".join(f"div.c{i}, #i{i}, div .c{i}, .c{i} > b {{ display: none }}" for i in range(50_000)),
        "{" * 300_000, "}" * 300_000, "/*" * 300_000,
        "@media x {" * 50_000 + ".c1 { display: none }" + "}" * 50_000,
        ".c1 {" + "margin-top:" * 100_000 + "}",
        ",".join(f".c{i}" for i in range(100_000)) + " { display: none }",
    ]
    for css in sheets:
        start = time.perf_counter()
        count = hidden(f"<style>{css}</style>{body}")
        assert time.perf_counter() - start < 1, css[:40]
        assert count <= len(parse_html(body).text)
    # only the first MAX_STYLESHEET_CHARS of style are read, and at most MAX_CSS_SELECTORS hiding selectors
    late = "<style>" + " " * MAX_STYLESHEET_CHARS + ".c1 { display: none }</style>"
    assert hidden(late + body) == 0
    many = "<style>" + "".join(f".c{i} {{ display: none }}" for i in range(1000)) + "</style>"
    assert hidden(many + body) == sum(len(f"text {i}") for i in range(MAX_CSS_SELECTORS))
    # rules for elements the document does not have cannot crowd out the one that hides
    decoys = "".join(f".decoy{i} {{ display: none }}" for i in range(1000))
    assert hidden(f"<style>{decoys} .c7 {{ display: none }}</style>{body}") == len("text 7")


def test_hostile_inline_styles_and_markup_stay_linear() -> None:
    pages = [
        "<div style='" + "top:" * 100_000 + "'>x</div>",
        "<div style='font-size:0'>" + "<span style='font-size:12px'>a</span>b" * 20_000 + "</div>",
        "<div style='margin-top:99999px'></div>" + "<p>x</p>" * 50_000,
        "<div style='display:none'>" * 10_000 + "x" + "</div>" * 10_000,
        "<span style='font-size:0'>ab<b>c</b></span>" * 20_000,
    ]
    for html in pages:
        start = time.perf_counter()
        parse_html(html)
        assert time.perf_counter() - start < 2, html[:40]
    # thousands of empty elements do not exhaust the count: what follows them is still hidden
    newsletter = len(" ".join(NEWSLETTER[3:-4].split()))
    assert hidden("<div style='margin-top:99999px'></div>" + "<b></b>" * 6000 + NEWSLETTER) == newsletter
    assert hidden("<div style='font-size:0'>" + "<i style='font-size:1px'></i>" * 6000 + NEWSLETTER + "</div>") >= (
        newsletter)
