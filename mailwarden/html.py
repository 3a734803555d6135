"""HTML bodies rendered to the text a reader sees, and the links, forms and image maps in them.

Parsing uses selectolax (Lexbor); scripts and styles are never run, only looked at.
"""

from __future__ import annotations

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


_DROP = "script, style, noscript, template, head"


def parse_html(html: str, max_links: int = 500) -> HtmlDocument:
    """Render HTML to text and collect its links; tolerant of any markup."""
    tree = LexborHTMLParser(html)
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
    )
