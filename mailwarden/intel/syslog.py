"""Syslog for SIEMs: RFC 5424 messages over TCP or TLS (RFC 5425), octet-counted (RFC 6587), CEF or JSON.

    frame(message(event, settings))  -> b'212 <132>1 2026-03-02T12:00:00.123Z mx1 mailwarden - indicator.upserted
                                         [origin software="Mailwarden" swVersion="0.1.0"] CEF:0|Mailwarden|...'

The MSGID is the event type; the payload is a CEF line (ArcSight's Common Event Format: header fields with
``|`` and ``\\`` escaped, extension values with ``\\``, ``=`` and line breaks escaped) or the event as one
line of JSON. ``send_events`` takes a sink's new events from the outbox (``outbox.events_after``), writes
them over one connection and moves the sink's cursor only once everything was written: at least once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from mailwarden import __version__
from mailwarden.intel import outbox
from mailwarden.intel.settings import SyslogSettings
from mailwarden.store.db import begin_write

FACILITY = 16  # local0
SEVERITY = {"threat.detected": 4, "indicator.upserted": 5, "indicator.revoked": 5, "lookalike.found": 4,
            "retrohunt.completed": 5, "message.scanned": 6}  # warning, notice, informational
CEF_SEVERITY = {"threat.detected": 8, "lookalike.found": 7, "indicator.upserted": 5, "indicator.revoked": 3,
                "retrohunt.completed": 5, "message.scanned": 1}
CEF_NAMES = {"threat.detected": "Threat detected in mail", "indicator.upserted": "Indicator created or updated",
             "indicator.revoked": "Indicator revoked", "lookalike.found": "Lookalike domain found",
             "retrohunt.completed": "Retro-hunt completed", "message.scanned": "Message scanned"}
_INDICATOR_FIELDS = {"domain": "dhost", "url": "request", "ipv4": "dst", "ipv6": "c6a3", "email-addr": "suser",
                     "file-sha256": "fileHash"}


def _header_field(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _extension_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("\\", "\\\\").replace("=", "\\=").replace("\r\n", "\\n").replace("\n", "\\n") \
        .replace("\r", "\\r")


def cef(event: dict[str, Any]) -> str:
    """One event as a CEF:0 line."""
    kind = str(event["type"])
    data = event.get("data") or {}
    created = datetime.fromisoformat(str(event["created_at"]))
    ext: list[tuple[str, Any]] = [("rt", str(int(created.timestamp() * 1000))), ("externalId", str(event["id"]))]
    indicator = data.get("indicator") if isinstance(data, dict) else None
    if isinstance(indicator, dict) and "type" in indicator:
        field = _INDICATOR_FIELDS.get(str(indicator["type"]))
        if field == "c6a3":
            ext.append(("c6a3Label", "indicatorAddress"))
        if field:
            ext.append((field, indicator.get("value", "")))
        ext += [("cs1Label", "indicatorType"), ("cs1", indicator.get("type", "")), ("cn1Label", "confidence"),
                ("cn1", str(indicator.get("confidence", ""))), ("act", indicator.get("action", "")),
                ("cs2Label", "source"), ("cs2", indicator.get("source", "")), ("cs3Label", "tags"),
                ("cs3", ",".join(indicator.get("tags", []) or []))]
        if indicator.get("valid_until"):
            ext.append(("end", indicator["valid_until"]))
    elif isinstance(data, dict):
        for key, name in (("client_ip", "src"), ("header_from", "suser"), ("mail_from", "cs4"),
                          ("message_id", "cs5"), ("verdict", "outcome"), ("score", "cn2"), ("domain", "dhost"),
                          ("lookalike_of", "cs6")):
            if data.get(key) not in (None, ""):
                if name.startswith(("cs", "cn")):
                    ext.append((f"{name}Label", key))
                ext.append((name, str(data[key])))
        if data.get("recipients"):
            ext.append(("duser", ",".join(map(str, data["recipients"]))))
        if data.get("action"):
            action = data["action"]
            ext.append(("act", ",".join(action) if isinstance(action, list) else str(action)))
        if data.get("signals"):
            ext.append(("msg", " ".join(map(str, data["signals"]))))
    header = "|".join(_header_field(x) for x in ("CEF:0", "Mailwarden", "Mailwarden", __version__, kind,
                                                 CEF_NAMES.get(kind, kind), str(CEF_SEVERITY.get(kind, 5))))
    return header + "|" + " ".join(f"{key}={_extension_value(value)}" for key, value in ext)


def _printable(text: str, limit: int) -> str:
    cleaned = "".join(ch for ch in text if 33 <= ord(ch) <= 126)
    return cleaned[:limit] or "-"


def message(event: dict[str, Any], settings: SyslogSettings, hostname: str | None = None) -> bytes:
    """The RFC 5424 message of one event (no framing)."""
    kind = str(event["type"])
    pri = FACILITY * 8 + SEVERITY.get(kind, 5)
    created = datetime.fromisoformat(str(event["created_at"])).astimezone(UTC)
    stamp = created.strftime("%Y-%m-%dT%H:%M:%S.") + f"{created.microsecond // 1000:03d}Z"
    host = _printable(hostname or settings.hostname or socket.gethostname(), 255)
    structured = f'[origin software="Mailwarden" swVersion="{__version__}"]'
    payload = cef(event) if settings.format == "cef" else json.dumps(event, ensure_ascii=False,
                                                                     separators=(",", ":"), sort_keys=True)
    return f"<{pri}>1 {stamp} {host} mailwarden - {_printable(kind, 32)} {structured} {payload}".encode()


def frame(data: bytes) -> bytes:
    """Octet counting (RFC 6587 3.4.1, RFC 5425 4.3): the length, a space, the message."""
    return str(len(data)).encode("ascii") + b" " + data


def tls_context(settings: SyslogSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=settings.ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


async def write_frames(settings: SyslogSettings, frames: list[bytes]) -> None:
    """Open a connection, write every frame, close it cleanly (raises OSError or ssl.SSLError on failure)."""
    host, port = settings.host_port
    context = tls_context(settings) if settings.transport == "tls" else None
    reader, writer = await asyncio.wait_for(asyncio.open_connection(
        host, port, ssl=context, server_hostname=(settings.server_name or host) if context else None),
        timeout=settings.timeout)
    try:
        for data in frames:
            writer.write(data)
        await asyncio.wait_for(writer.drain(), timeout=settings.timeout)
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), timeout=settings.timeout)
    del reader


async def send_events(engine: Engine, settings: SyslogSettings, now: Callable[[], datetime],
                      hostname: str | None = None) -> int:
    """Send a sink's new events; returns how many were sent (the cursor moves only after they all were)."""
    sent = 0
    while True:
        def take() -> tuple[list[dict[str, Any]], int, int]:
            with begin_write(engine) as connection:
                after = outbox.start_position(connection, settings.sink, now())
                rows, reached = outbox.events_after(connection, after, settings.events, now())
                return rows, reached, after

        rows, reached, after = await asyncio.to_thread(take)
        if reached == after:
            return sent
        if rows:
            await write_frames(settings, [frame(message(outbox.event_document(r), settings, hostname)) for r in rows])

        def advance(position: int) -> None:
            with begin_write(engine) as connection:
                outbox.set_cursor(connection, settings.sink, {"event_id": position}, now())

        await asyncio.to_thread(advance, reached)
        sent += len(rows)
