"""HTML bodies rendered to the text a reader sees, and the links, forms and image maps in them.

Parsing uses selectolax (Lexbor); scripts and styles are never run, only looked at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from selectolax.lexbor import LexborHTMLParser


@dataclass(frozen=True)
class HtmlLink:
    href: str
    kind: str  # href | form | area
    text: str = ""


@dataclass(frozen=True)
class HtmlDocument:
    text: str
    links: tuple[HtmlLink, ...] = ()
    has_password_input: bool = False
    has_form: bool = False
    scripts: tuple[str, ...] = ()
    meta_refresh: str = ""
    title: str = ""
    hidden_text_chars: int = 0


_DROP = "script, style, noscript, template, head"
# Inline styles that hide text from the reader while a filter still reads it.
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden|"
                           r"font-size\s*:\s*0(?:\.0*)?(?:px|pt|em)?\s*(?:;|$)|"
                           r"opacity\s*:\s*0(?:\.0*)?\s*(?:;|$)|max-height\s*:\s*0", re.IGNORECASE)


def _hidden_text_chars(tree: LexborHTMLParser) -> int:
    total = 0
    for node in tree.css("[style]"):
        if _HIDDEN_STYLE.search(node.attributes.get("style") or ""):
            total += len((node.text() or "").strip())
    return total

# The tree builder walks the stack of open elements for many start tags, so its time grows with
# tags x nesting depth (200,000 nested <div> take a minute). Markup with very many tags is flattened
# below MAX_DEPTH first: deeper start tags and their end tags are dropped, the text stays. Browsers
# cap nesting too (Chromium at 512). Tags that cannot nest deeply, or whose content must not turn
# into text (script, style ...), are left alone.
MAX_DEPTH = 512
_MANY_TAGS = 20_000
_TAG = re.compile(r"<(/?)([a-zA-Z][^\s/>]*)[^>]*>")
_FLAT_TAGS = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr",
    "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "tbody", "thead", "tfoot", "colgroup",
    "caption", "a", "form", "html", "head", "body", "script", "style", "textarea", "title", "xmp", "iframe",
    "noembed", "noframes", "noscript", "plaintext", "template", "select",
})


def _flatten(html: str) -> str:
    if html.count("<") <= _MANY_TAGS:
        return html
    depth = 0
    dropped = 0  # start tags dropped whose end tags are still to come

    def visit(tag: re.Match[str]) -> str:
        nonlocal depth, dropped
        if tag.group(2).lower() in _FLAT_TAGS:
            return tag.group(0)
        if tag.group(1):
            if dropped:
                dropped -= 1
                return ""
            depth = max(depth - 1, 0)
            return tag.group(0)
        if depth >= MAX_DEPTH:
            dropped += 1
            return ""
        depth += 1
        return tag.group(0)

    return _TAG.sub(visit, html)


def parse_html(html: str, max_links: int = 500) -> HtmlDocument:
    """Render HTML to text and collect its links; tolerant of any markup."""
    tree = LexborHTMLParser(_flatten(html))
    title_node = tree.css_first("title")
    title = title_node.text(strip=True) if title_node is not None else ""
    scripts = tuple((node.text() or "")[:20000] for node in tree.css("script"))
    meta_refresh = ""
    for meta in tree.css("meta[http-equiv]"):
        if (meta.attributes.get("http-equiv") or "").lower() == "refresh":
            meta_refresh = meta.attributes.get("content") or ""
    links: list[HtmlLink] = []
    for node in tree.css("a[href], area[href], form[action]"):
        if len(links) >= max_links:
            break
        tag = node.tag
        if tag == "form":
            links.append(HtmlLink(node.attributes.get("action") or "", "form"))
        elif tag == "area":
            links.append(HtmlLink(node.attributes.get("href") or "", "area", node.attributes.get("alt") or ""))
        else:
            links.append(HtmlLink(node.attributes.get("href") or "", "href", node.text(separator=" ")))
    has_password = any(
        (node.attributes.get("type") or "").lower() == "password" for node in tree.css("input")
    )
    has_form = tree.css_first("form") is not None
    hidden = _hidden_text_chars(tree)
    for node in tree.css(_DROP):
        node.decompose()
    body = tree.body
    root = body if body is not None else tree.root
    text = root.text(separator=" ") if root is not None else ""
    return HtmlDocument(
        text=" ".join(text.split()),
        links=tuple(links),
        has_password_input=has_password,
        has_form=has_form,
        scripts=scripts,
        meta_refresh=meta_refresh,
        title=title,
        hidden_text_chars=hidden,
    )
