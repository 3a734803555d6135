"""Small messages for analyzer tests: a few keyword arguments to RFC 5322 bytes."""

from __future__ import annotations

from mailwarden.message import Message, parse


def build(
    *,
    from_: str = "Alice Example <alice@example.org>",
    to: str = "bob@acme-corp.com",
    subject: str = "Hello",
    body: str = "Just checking in about tomorrow.",
    html: str | None = None,
    headers: dict[str, str] | None = None,
    authserv_id: str | None = None,
) -> Message:
    lines = [f"From: {from_}", f"To: {to}", f"Subject: {subject}", "Message-ID: <1@example.org>",
             "Date: Mon, 02 Mar 2026 10:00:00 +0000", "MIME-Version: 1.0"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if html is None:
        lines += ["Content-Type: text/plain; charset=utf-8", "", body]
    else:
        lines += ['Content-Type: multipart/alternative; boundary="b1"', "", "--b1",
                  "Content-Type: text/plain; charset=utf-8", "", body, "--b1",
                  "Content-Type: text/html; charset=utf-8", "", html, "--b1--"]
    return parse("\r\n".join(lines).encode("utf-8"), authserv_id=authserv_id)


def ids(signals: object) -> set[str]:
    return {s.id for s in signals}  # type: ignore[attr-defined]
