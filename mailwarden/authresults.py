"""Authentication-Results (RFC 8601) header parsing.

Only results written by the organisation's own boundary MTA (its authserv-id) are trusted; anything
else in the header block could have been written by the sender.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_COMMENT = re.compile(r"\([^()]*\)")
_METHOD = re.compile(r"^\s*([a-z0-9_.-]+)\s*=\s*([a-z0-9_-]+)", re.IGNORECASE)
_PROPERTY = re.compile(r"([a-z0-9_-]+\.[a-z0-9_-]+)\s*=\s*(\"[^\"]*\"|[^\s;]+)", re.IGNORECASE)
_POLICY_IN_COMMENT = re.compile(r"\bp=([a-z]+)", re.IGNORECASE)


@dataclass(frozen=True)
class MethodResult:
    """One ``method=result`` statement with its properties (``header.d``, ``smtp.mailfrom`` ...)."""

    method: str
    result: str
    properties: dict[str, str] = field(default_factory=dict)
    comment: str = ""

    def prop(self, name: str) -> str:
        return self.properties.get(name, "")

    @property
    def domain(self) -> str:
        """The domain the result is about: header.d/header.from/smtp.mailfrom, whichever applies."""
        for key in ("header.d", "header.from", "smtp.mailfrom", "header.i", "smtp.helo"):
            value = self.properties.get(key, "")
            if value:
                return value.rsplit("@", 1)[-1].lower()
        return ""


@dataclass(frozen=True)
class AuthResults:
    """The parsed contents of one Authentication-Results header."""

    authserv_id: str | None
    results: tuple[MethodResult, ...]

    def method(self, name: str) -> list[MethodResult]:
        return [r for r in self.results if r.method == name]

    def first(self, name: str) -> MethodResult | None:
        found = self.method(name)
        return found[0] if found else None


def _split_statements(value: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    in_quote = False
    for ch in value:
        if ch == '"' and depth == 0:
            in_quote = not in_quote
        elif not in_quote:
            if ch == "(":
                depth += 1
            elif ch == ")" and depth:
                depth -= 1
            elif ch == ";" and depth == 0:
                parts.append("".join(current))
                current = []
                continue
        current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def parse_authentication_results(value: str) -> AuthResults:
    """Parse a header value; tolerant of the authserv-id-less form some providers write."""
    statements = _split_statements(" ".join(value.split()))
    authserv_id: str | None = None
    if statements:
        head = _COMMENT.sub(" ", statements[0]).split()
        if head and "=" not in head[0]:
            authserv_id = head[0].lower()
            statements.pop(0)
    results = []
    for statement in statements:
        for chunk in _chunks(statement):
            parsed = _parse_method(chunk)
            if parsed:
                results.append(parsed)
    return AuthResults(authserv_id=authserv_id, results=tuple(results))


def _chunks(statement: str) -> list[str]:
    """Split a statement that holds several ``method=result`` (missing ';' between them)."""
    stripped = _COMMENT.sub(lambda m: " " * len(m.group(0)), statement)
    starts = [m.start(1) for m in re.finditer(r"(?:^|\s)((?:spf|dkim|dmarc|arc|compauth|bimi|iprev|"
                                               r"auth|dkim-atps|dnswl|x-[a-z0-9-]+)\s*=)", stripped,
                                               re.IGNORECASE)]
    if len(starts) <= 1:
        return [statement]
    return [statement[a:b] for a, b in zip(starts, [*starts[1:], len(statement)], strict=True)]


def _parse_method(chunk: str) -> MethodResult | None:
    comments = " ".join(c.strip("()") for c in _COMMENT.findall(chunk))
    text = _COMMENT.sub(" ", chunk)
    match = _METHOD.match(text)
    if not match:
        return None
    method, result = match.group(1).lower(), match.group(2).lower()
    props = {k.lower(): v.strip('"') for k, v in _PROPERTY.findall(text[match.end():])}
    if method == "dmarc" and "policy.published-domain-policy" not in props:
        policy = _POLICY_IN_COMMENT.search(comments)
        if policy:
            props["policy.published-domain-policy"] = policy.group(1).lower()
    return MethodResult(method=method, result=result, properties=props, comment=comments)
