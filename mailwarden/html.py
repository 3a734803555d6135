"""HTML bodies rendered to the text a reader sees, and the links, forms and image maps in them.

Parsing uses selectolax (Lexbor); scripts and styles are never run, only looked at.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError


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

# Hidden text: text a filter reads but the reader never sees. An element's own text is hidden by
# display:none, visibility:hidden, a zero opacity or max-height, a zero font-size (unless a descendant sets
# a size again: layouts put font-size:0 on a table cell to close the gaps between its columns), or an offset
# that moves it far off-screen (text-indent:-9999px, position:absolute;left:-9999px). A huge vertical
# offset or spacer (margin-top:470500px, a height:2000vh wrapper) hides everything after it too: the reader
# sees the lure at the top while a copied newsletter far below the fold is what a filter reads. The styles
# count from inline style= attributes and from the rules of <style> elements.
OFFSCREEN_PX = 5000  # an offset, indent or spacer this large (in CSS px) puts text beyond any screen
SCREEN_PX = 1000  # 100vh and 100vw taken as one screen of this many px: 500vh is five screens
FONT_PX = 16  # 1em and 1rem
MAX_STYLESHEET_CHARS = 100_000  # of all <style> elements together; the rest is not read
MAX_CSS_RULES = 3_000  # blocks read from the style sheets; a long marketing sheet has a few hundred
MAX_CSS_SELECTORS = 200  # selectors of hiding rules (and names of sizing rules) matched against the document
MAX_READ_SELECTORS = 5_000  # selectors of hiding rules read; past MAX_CSS_SELECTORS only those naming classes
# and ids the document has are matched, so that rules for nothing cannot crowd out the ones that hide
MAX_SELECTOR_CHARS = 200
MAX_WALKED_NODES = 5_000  # nodes visited in Python to count text after a spacer or around a font-size reset

_HIDES = 1  # hides its own text
_PUSHES = 2  # pushes the text after it off-screen
_ZERO_FONT = 4  # hides its own text unless a descendant sets a font size again
# These patterns see declarations in lower case (IGNORECASE would make them several times slower).
_ZERO = r"(?:0+(?:\.0*)?|\.0+)(?:px|pt|em|rem|%)?\s*(?:!\s*important\s*)?(?:;|$)"
_ZERO_FONT_SIZE = re.compile(rf"font-size\s*:\s*{_ZERO}")
_SIZED_FONT = re.compile(rf"font-size\s*:\s*(?!{_ZERO})")
# (property, pattern): looking for the property with str.find first is twice as fast as one regex.
_HIDING_DECLARATIONS = tuple((name, re.compile(rf"{name}\s*:\s*{value}")) for name, value in (
    ("display", "none"), ("visibility", "(?:hidden|collapse)"), ("opacity", _ZERO), ("max-height", _ZERO)))
# Cheap test before declarations are parsed: a box property with a length of three digits (or 52in).
_OFFSET_HINT = re.compile(r"(?:margin|padding|top|left|right|bottom|indent|height)\s*:[^;:]{0,60}?"
                          r"(?:\d{3}|\d\d(?:\.\d*)?\s*in\b)")
_DECLARATION = re.compile(r"([a-z-]+)\s*:\s*([^;]*)")
_LENGTH = re.compile(r"([+-]?(?:\d+(?:\.\d*)?|\.\d+))([a-z]*)")
_VIEWPORT_UNIT = SCREEN_PX / 100
_UNIT_PX = {
    "": 1.0, "px": 1.0, "pt": 4 / 3, "pc": 16.0, "in": 96.0, "cm": 96 / 2.54, "mm": 96 / 25.4, "q": 96 / 101.6,
    "em": float(FONT_PX), "rem": float(FONT_PX), "ex": FONT_PX / 2, "ch": FONT_PX / 2,
    **dict.fromkeys(("vh", "vw", "vmin", "vmax", "svh", "lvh", "dvh", "svw", "lvw", "dvw"), _VIEWPORT_UNIT),
}
_OUT_OF_FLOW = re.compile(r"position\s*:\s*(?:absolute|fixed)")
_POSITIONED = re.compile(r"position\s*:\s*(?:absolute|fixed|relative)")
# Zero-width and blank characters marketing mail pads a hidden preheader with; they are not text. Nor are the
# same characters garbled by a template stored in the wrong charset (UTF-8 read as windows-1252: "â€Œ").
_FILLER = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u2060-\u2064\u3164\ufeff\uffa0]+"
                     "|\u00cd\u008f|\u00e2\u20ac[\u2021\u2039\u0152\u008d\u017d\u008f]|\u00c2(?=[\u00a0\u00ad])"
                     "|\u00ef\u00bb\u00bf")


def _px(token: str) -> float | None:
    match = _LENGTH.fullmatch(token)
    scale = _UNIT_PX.get(match.group(2)) if match else None
    return float(match.group(1)) * scale if match and scale is not None else None


def _box(values: list[float | None]) -> list[float | None]:
    """The top, right, bottom and left of a margin or padding shorthand of one to four values."""
    if not values:
        return [None] * 4
    top = values[0]
    right = values[1] if len(values) > 1 else top
    bottom = values[2] if len(values) > 2 else top
    return [top, right, bottom, values[3] if len(values) > 3 else right]


def _far(value: float | None) -> bool:
    return value is not None and abs(value) >= OFFSCREEN_PX


def _down(value: float | None) -> bool:
    return value is not None and value >= OFFSCREEN_PX


def _declares(style: str, name: str, pattern: re.Pattern[str]) -> bool:
    """Whether a declaration block (in lower case) holds a declaration of property `name` that matches."""
    at = style.find(name)
    while at >= 0:
        if pattern.match(style, at):
            return True
        at = style.find(name, at + len(name))
    return False


def _sets_font_size(style: str) -> bool:
    """Whether a declaration block (in lower case) gives its text a non-zero font size."""
    return _declares(style, "font-size", _SIZED_FONT)


def _hiding(style: str) -> int:
    """How a declaration block (in lower case) hides text: a combination of _HIDES, _PUSHES and _ZERO_FONT, or 0."""
    flags = 0
    if any(_declares(style, name, pattern) for name, pattern in _HIDING_DECLARATIONS):
        flags |= _HIDES
    if _declares(style, "font-size", _ZERO_FONT_SIZE):
        flags |= _ZERO_FONT
    if _OFFSET_HINT.search(style) is None:
        return flags
    lengths: dict[str, list[float | None]] = {}
    for name, value in _DECLARATION.findall(style):
        lengths[name] = [_px(token) for token in value.split("!")[0].split()[:4]]

    def length(name: str, shorthand: str = "", side: int = 0) -> float | None:
        if name in lengths:
            return (lengths[name] or [None])[0]
        return _box(lengths[shorthand])[side] if shorthand in lengths else None

    margin = [length(f"margin-{side}", "margin", i) for i, side in enumerate(("top", "right", "bottom", "left"))]
    padding = [length(f"padding-{side}", "padding", i) for i, side in enumerate(("top", "right", "bottom", "left"))]
    offsets = [length(side) for side in ("top", "right", "bottom", "left")] if _POSITIONED.search(style) else []
    if (_far(length("text-indent")) or _far(margin[0]) or _far(margin[3]) or _down(padding[0])
            or _down(padding[3]) or _down(length("line-height")) or any(map(_far, offsets))):
        flags |= _HIDES
    # an element out of the flow, or without a box (display:none), pushes nothing down
    if not _OUT_OF_FLOW.search(style) and not _declares(style, "display", _HIDING_DECLARATIONS[0][1]) and (
            _down(margin[0]) or _down(margin[2]) or _down(padding[0]) or _down(padding[2])
            or _down(length("height")) or _down(length("min-height")) or _down(length("line-height"))):
        flags |= _PUSHES
    return flags


# Style sheets are read with a small parser: comments dropped, blocks matched by their braces, and
# only simple selectors kept (classes and ids, with an element name and descendant or child
# combinators); anything else (attributes, pseudo-classes, siblings) is left out rather than guessed.
# Rules inside @media (or any other at-rule, or a <style media=...>) apply only on some screens, unless
# the query is just "screen" or "all": they never count as hiding, and an element whose class or id they
# restyle is a responsive variant (a .mobile-only block shown on phones while the desktop copy hides),
# whose hidden text is not counted.
_CSS_NOISE = re.compile(r"/\*.*?(?:\*/|\Z)|<!--|-->", re.DOTALL)
_BRACE = re.compile(r"([{}])")
_EVERY_SCREEN = re.compile(r"(?:@media\s+)?(?:only\s+)?(?:screen|all)?", re.IGNORECASE)  # no condition at all
_COMPOUND = r"(?:[a-zA-Z][a-zA-Z0-9]*(?:[.#]-?[_a-zA-Z][\w-]*)*|(?:[.#]-?[_a-zA-Z][\w-]*)+)"
_SIMPLE_SELECTOR = re.compile(rf"{_COMPOUND}(?:\s*>\s*{_COMPOUND}|\s+{_COMPOUND})*", re.ASCII)
_SELECTOR_NAMES = re.compile(r"[.#](-?[_a-zA-Z][\w-]*)|\[\s*(?:class|id)\s*[~|^$*]?=\s*[\"']?\s*([\w-]+)",
                             re.ASCII | re.IGNORECASE)
_NAME = re.compile(r"-?[_a-zA-Z][\w-]*", re.ASCII)
_RESTYLES = re.compile(r"(?<![\w-])(?:display|visibility|opacity|font-size|max-height|min-height|line-height|"
                       r"height|margin|padding|text-indent|position|top|left|right|bottom)(?:-[\w-]+)?\s*:")


@dataclass
class _StyleSheet:
    hiding: dict[str, int] = field(default_factory=dict)  # selector of an unconditional rule -> how it hides
    sizing: set[str] = field(default_factory=set)  # class and id names given a non-zero font-size
    restyled: set[str] = field(default_factory=set)  # class and id names that conditional rules restyle
    rules: int = 0


def _read_css(css: str, conditional: bool, sheet: _StyleSheet) -> None:
    parts = _BRACE.split(css)  # text, brace, text, brace ... text
    open_preludes: list[str] = []
    for at in range(1, min(len(parts), 4 * MAX_CSS_RULES), 2):  # two braces a rule
        if parts[at] == "{":
            if sheet.rules >= MAX_CSS_RULES:
                return
            sheet.rules += 1
            open_preludes.append(parts[at - 1].rsplit(";", 1)[-1].strip())
        elif open_preludes:
            prelude = open_preludes.pop()
            if not prelude.startswith("@"):
                inside = conditional or any(not _EVERY_SCREEN.fullmatch(block) for block in open_preludes)
                _read_rule(prelude, parts[at - 1], inside, sheet)


def _read_rule(prelude: str, body: str, conditional: bool, sheet: _StyleSheet) -> None:
    body = body.lower()
    if conditional:
        if _RESTYLES.search(body):
            sheet.restyled.update(a or b for a, b in _SELECTOR_NAMES.findall(prelude))
        return
    if _sets_font_size(body) and len(sheet.sizing) < MAX_CSS_SELECTORS:
        sheet.sizing.update(a or b for a, b in _SELECTOR_NAMES.findall(prelude))
    flags = _hiding(body)
    if not flags:
        return
    for selector in prelude.split(","):
        if len(sheet.hiding) >= MAX_READ_SELECTORS:
            break
        selector = " ".join(selector.split())
        if (len(selector) <= MAX_SELECTOR_CHARS and ("." in selector or "#" in selector)
                and _SIMPLE_SELECTOR.fullmatch(selector)):
            sheet.hiding[selector] = sheet.hiding.get(selector, 0) | flags


def _read_stylesheets(styles: list[tuple[str, str]]) -> _StyleSheet:
    sheet = _StyleSheet()
    for css, media in styles:
        _read_css(_CSS_NOISE.sub(" ", css), not _EVERY_SCREEN.fullmatch(media), sheet)
    return sheet


def _collect_styles(tree: LexborHTMLParser) -> list[tuple[str, str]]:
    """The text and media of the <style> elements, MAX_STYLESHEET_CHARS in all."""
    styles = []
    budget = MAX_STYLESHEET_CHARS
    for node in tree.css("style"):
        css = (node.text() or "")[:budget]
        if css.strip():
            styles.append((css, (node.attributes.get("media") or "").strip().lower()))
        budget -= len(css)
        if budget <= 0:
            break
    return styles


# Hidden elements, spacers and font-size resets are marked with attributes, so that lexbor's selector
# engine finds the outermost ones and those below the fold without a walk over the tree in Python. The
# names end in a random token so that a sender cannot plant the marks in the markup.
_MARK = f"data-mailwarden-{secrets.token_hex(4)}"
_HIDDEN_MARK = f"{_MARK}-hidden"
_PUSHER_MARK = f"{_MARK}-pusher"
_PUSHED_MARK = f"{_MARK}-pushed"
_SIZED_MARK = f"{_MARK}-sized"
_FOLD = f"\u2063{_MARK}\u2063"  # a text put at the fold when there is too much after it to visit


def _unmark(nodes: list[LexborNode], *marks: str) -> None:
    for node in nodes:
        for mark in marks:
            if mark in node.attributes:
                del node.attrs[mark]


def _visible_chars(text: str) -> int:
    return len(" ".join((text if text.isascii() else _FILLER.sub("", text)).split()))


def _names(node: LexborNode) -> list[str]:
    """The classes and the id of an element."""
    return [*(node.attrs.get("class") or "").split(), node.attrs.get("id") or ""]


class _Walk:
    """A budget of nodes visited one by one in Python (MAX_WALKED_NODES per document)."""

    def __init__(self) -> None:
        self.left = MAX_WALKED_NODES

    def pushed_text_chars(self, tree: LexborHTMLParser, fold: LexborNode, moves_itself: bool) -> int:
        """The text after a huge offset or spacer (and its own if it moves too); those nodes are marked pushed."""
        chars = 0
        if moves_itself:
            fold.attrs[_PUSHED_MARK] = ""
            chars += _visible_chars(fold.text(separator=" "))
        node: LexborNode | None = fold
        while node is not None and self.left > 0:
            sibling = node.next
            while sibling is not None and self.left > 0:
                self.left -= 1
                if sibling.is_element_node:
                    sibling.attrs[_PUSHED_MARK] = ""
                if not sibling.is_comment_node:
                    chars += _visible_chars(sibling.text(separator=" "))
                sibling = sibling.next
            node = node.parent
        if self.left > 0 or tree.root is None:
            return chars
        # Too many nodes to visit one by one: all the text after a mark put at the fold.
        if moves_itself:
            fold.insert_before(_FOLD)
        else:
            fold.insert_after(_FOLD)
        return _visible_chars(tree.root.text(separator=" ").partition(_FOLD)[2])

    def zero_font_text_chars(self, hidden: LexborNode) -> int:
        """The text under a font-size:0 element that no descendant gives a font size again (all of it once the
        budget is spent)."""
        chars = 0
        stack = [hidden.child]
        while stack and self.left > 0:
            node = stack.pop()
            while node is not None and self.left > 0:
                self.left -= 1
                if node.is_text_node:
                    chars += _visible_chars(node.text())
                elif node.is_element_node and _SIZED_MARK not in node.attributes and node.child is not None:
                    stack.append(node.child)
                node = node.next
        return chars if self.left > 0 else _visible_chars(hidden.text(separator=" "))


def _hidden_text_chars(tree: LexborHTMLParser, styles: list[tuple[str, str]]) -> int:
    """Characters of text hidden from the reader, each counted once; the tree must hold no style or script."""
    candidates = [(node, flags) for node in tree.css("[style]")
                  if (flags := _hiding((node.attrs.get("style") or "").lower()))]
    sheet = _read_stylesheets(styles)
    hiding = sheet.hiding
    if len(hiding) > MAX_CSS_SELECTORS:
        present = {name for node in tree.css("[class], [id]") for name in _names(node)}
        hiding = {selector: flags for selector, flags in hiding.items()
                  if all(a in present or b in present for a, b in _SELECTOR_NAMES.findall(selector))}
    by_flags: dict[int, list[str]] = {}
    for selector, flags in list(hiding.items())[:MAX_CSS_SELECTORS]:
        by_flags.setdefault(flags, []).append(selector)
    for flags, selectors in by_flags.items():
        try:
            candidates.extend((node, flags) for node in tree.css(", ".join(selectors)))
        except SelectolaxError:  # a selector lexbor does not take; the simple ones it always does
            continue
    if not candidates:
        return 0
    zero_font: dict[int, bool] = {}  # hidden elements (by mem_id) -> hidden by a zero font-size only
    pushers: dict[int, bool] = {}  # spacers -> moving their own text too
    restyled = sheet.restyled
    for node, flags in candidates:
        if restyled and not restyled.isdisjoint(_names(node)):
            continue  # a responsive variant
        key = node.mem_id
        if flags & (_HIDES | _ZERO_FONT):
            if key not in zero_font:
                node.attrs[_HIDDEN_MARK] = ""
            zero_font[key] = zero_font.get(key, True) and not flags & _HIDES
        if flags & _PUSHES:
            if key not in pushers:
                node.attrs[_PUSHER_MARK] = ""
            pushers[key] = pushers.get(key, False) or bool(flags & _HIDES)
    walk = _Walk()
    chars = 0
    if pushers:
        _unmark(tree.css(f"[{_HIDDEN_MARK}] [{_PUSHER_MARK}]"), _PUSHER_MARK)  # a spacer in hidden content
        fold = tree.css_first(f"[{_PUSHER_MARK}]")  # the first spacer
        if fold is not None:
            chars += walk.pushed_text_chars(tree, fold, moves_itself=pushers.get(fold.mem_id, False))
            # hidden elements below the fold are counted with it
            _unmark(tree.css(f"[{_PUSHED_MARK}] [{_HIDDEN_MARK}], [{_PUSHED_MARK}][{_HIDDEN_MARK}]"), _HIDDEN_MARK)
    _unmark(tree.css(f"[{_HIDDEN_MARK}] [{_HIDDEN_MARK}]"), _HIDDEN_MARK)  # counted with the one around them
    sized_marked = False
    for node in tree.css(f"[{_HIDDEN_MARK}]"):
        if zero_font.get(node.mem_id) and _has_element_child(node):
            if not sized_marked:  # mark the resets once, when they matter
                _mark_sized(tree, sheet)
                sized_marked = True
            chars += walk.zero_font_text_chars(node)
        else:
            chars += _visible_chars(node.text(separator=" "))
    return chars


def _has_element_child(node: LexborNode) -> bool:
    child = node.child
    while child is not None and not child.is_element_node:
        child = child.next
    return child is not None


def _mark_sized(tree: LexborHTMLParser, sheet: _StyleSheet) -> None:
    """Mark the elements that set a font size again: by style=, by a class or id rule, or <font size>."""
    for node in tree.css("[style*='font-size' i], font[size]"):
        if node.tag == "font" or _sets_font_size((node.attrs.get("style") or "").lower()):
            node.attrs[_SIZED_MARK] = ""
    names = sorted(name for name in sheet.sizing if _NAME.fullmatch(name))[:MAX_CSS_SELECTORS]
    if names:
        selectors = ", ".join(f".{name}, #{name}" for name in names)
        try:
            for node in tree.css(selectors):
                node.attrs[_SIZED_MARK] = ""
        except SelectolaxError:
            pass


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
    styles = _collect_styles(tree)
    for node in tree.css(_DROP):
        node.decompose()
    hidden = _hidden_text_chars(tree, styles)
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
