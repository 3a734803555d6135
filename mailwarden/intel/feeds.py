"""Feeds for the controls a security team already has, rendered from the indicators in force.

    rows = published(engine, now=now, allow=allow, min_confidence=50)
    edl(rows, "domain")        -> "evil.example\\n..."           (Palo Alto, Fortinet, Check Point lists)
    edl(rows, "url")           -> "evil.example/login\\n..."     (no scheme: what PAN-OS asks for)
    edl(rows, "ip")            -> "192.0.2.7\\n2001:db8::7\\n"
    rpz(rows, zone, serial)    -> a DNS RPZ zone (SOA, NS, ``name CNAME .`` and ``*.name CNAME .``)
    misp_feed(rows, producer)  -> MispFeed(manifest, events, hashes)   (the MISP feed layout)
    indicators_csv(rows)       -> CSV with a header line

Only indicators in force are published: not revoked, not expired, not on the allow-list, and with a
current (decayed) confidence of at least ``min_confidence``. Every list holds one valid entry per line
and nothing else (no comments: not every firewall skips them).
"""

from __future__ import annotations

import csv
import hashlib
import io
import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine

from mailwarden.intel.allowlist import AllowList
from mailwarden.intel.indicators import TYPES, current_confidence, stable_uuid
from mailwarden.intel.store import active_rows
from mailwarden.store.db import store_errors

EDL_MAX_ENTRY = 255  # PAN-OS and FortiOS refuse longer entries
RPZ_TTL = 300
MISP_TYPES = {  # indicator type -> (MISP attribute type, category)
    "domain": ("domain", "Network activity"),
    "url": ("url", "Network activity"),
    "ipv4": ("ip-dst", "Network activity"),
    "ipv6": ("ip-dst", "Network activity"),
    "email-addr": ("email-src", "Payload delivery"),
    "file-sha256": ("sha256", "Payload delivery"),
}
_THREAT_LEVEL = {"critical": 1, "high": 1, "medium": 2, "low": 3}


def published(engine: Engine, *, now: datetime, allow: AllowList, min_confidence: int = 0,
              types: Iterable[str] = TYPES) -> list[dict[str, Any]]:
    """The indicators a feed may carry (see the module docstring), in id order."""
    found = []
    with store_errors("read the indicators from", engine.url), engine.connect() as connection:
        for row in active_rows(connection, now, types=types):
            if allow.reason(row["type"], row["value"]) is not None:
                continue
            row["current_confidence"] = current_confidence(row["confidence"], row["valid_from"], row["valid_until"],
                                                           now)
            if row["current_confidence"] >= min_confidence:
                found.append(row)
    return found


# --- EDL -----------------------------------------------------------------------------------------------

def edl_url(url: str) -> str | None:
    """A URL as a PAN-OS/FortiOS/Check Point URL-list entry: no scheme, no fragment; None if it cannot be one."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1].lower()
    entry = host + (parts.path if parts.path not in ("", "/") or parts.query else "")
    if parts.query:
        entry += "?" + parts.query
    if not host or len(entry) > EDL_MAX_ENTRY or any(c in entry for c in "*^ \t\r\n"):
        return None
    return entry


def edl(rows: Iterable[Mapping[str, Any]], kind: str, *, keep_scheme: bool = False) -> str:
    """One entry per line: ``kind`` is domain, url or ip (IPv4 and IPv6)."""
    entries: set[str] = set()
    for row in rows:
        value = str(row["value"])
        if (kind == "domain" and row["type"] == "domain") or (kind == "ip" and row["type"] in ("ipv4", "ipv6")):
            entries.add(value)
        elif kind == "url" and row["type"] == "url":
            entry = value if keep_scheme else edl_url(value)
            if entry is not None and len(entry) <= (2048 if keep_scheme else EDL_MAX_ENTRY):
                entries.add(entry)
    ordered = sorted(entries, key=_ip_order) if kind == "ip" else sorted(entries)
    return "".join(f"{entry}\n" for entry in ordered)


def _ip_order(text: str) -> tuple[int, int]:
    address = ipaddress.ip_address(text)
    return address.version, int(address)


# --- RPZ -----------------------------------------------------------------------------------------------

def rpz_ip_trigger(value: str) -> str:
    """The RPZ-IP owner name of one address (``32.7.2.0.192.rpz-ip``; IPv6 with ``zz`` for the longest zeros)."""
    address = ipaddress.ip_address(value)
    if address.version == 4:
        return "32." + ".".join(reversed(str(address).split("."))) + ".rpz-ip"
    groups = [f"{int(g, 16):x}" for g in address.exploded.split(":")]
    best, start = (0, -1), -1
    for i, group in enumerate([*groups, "end"]):
        if group == "0":
            start = i if start < 0 else start
        else:
            if start >= 0 and i - start > best[0] and i - start > 1:
                best = (i - start, start)
            start = -1
    if best[1] >= 0:
        groups = [*groups[:best[1]], "zz", *groups[best[1] + best[0]:]]
    return "128." + ".".join(reversed(groups)) + ".rpz-ip"


def rpz_body(rows: Iterable[Mapping[str, Any]], zone: str) -> str:
    """The zone's policy records (everything after SOA and NS), sorted, one rule set per indicator."""
    lines: set[str] = set()
    room = 253 - len(zone) - 3  # the owner name plus the zone's origin must still be a DNS name
    for row in rows:
        value = str(row["value"])
        if row["type"] == "domain" and len(value) <= room:
            lines.add(f"{value} CNAME .")
            lines.add(f"*.{value} CNAME .")
        elif row["type"] in ("ipv4", "ipv6"):
            lines.add(f"{rpz_ip_trigger(value)} CNAME .")
    return "".join(f"{line}\n" for line in sorted(lines))


def rpz(body: str, zone: str, serial: int) -> str:
    """A complete RPZ zone file: ``$ORIGIN``, ``$TTL``, SOA with ``serial``, NS, then ``body``."""
    origin = zone.rstrip(".") + "."
    header = (f"$ORIGIN {origin}\n$TTL {RPZ_TTL}\n"
              f"@ IN SOA localhost. hostmaster.localhost. ( {serial} 3600 600 604800 {RPZ_TTL} )\n"
              "@ IN NS localhost.\n")
    return header + body


# --- MISP ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MispFeed:
    """A MISP feed: ``manifest.json``, one ``<uuid>.json`` per event, and ``hashes.csv``."""

    manifest: dict[str, Any]
    events: dict[str, dict[str, Any]]
    hashes: str


def _timestamp(when: datetime) -> str:
    return str(int(when.timestamp()))


def misp_feed(rows: Iterable[Mapping[str, Any]], producer: str) -> MispFeed:
    """One event per day on which its indicators were first seen; an attribute per indicator."""
    org = {"name": producer, "uuid": stable_uuid("misp-org", producer)}
    by_day: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        by_day[row["first_seen"].date().isoformat()].append(row)
    manifest: dict[str, Any] = {}
    events: dict[str, dict[str, Any]] = {}
    hashes: list[str] = []
    for day, items in sorted(by_day.items()):
        event_uuid = stable_uuid("misp-event", producer, day)
        latest = max(r["modified_at"] for r in items)
        level = min(_THREAT_LEVEL[r["severity"]] for r in items)
        attributes = []
        for row in items:
            misp_type, category = MISP_TYPES[row["type"]]
            attribute = {
                "uuid": stable_uuid("misp-attribute", row["stix_id"]), "type": misp_type, "category": category,
                "value": row["value"], "to_ids": row["action"] == "block" or row["confidence"] >= 80,
                "timestamp": _timestamp(row["modified_at"]), "comment": row["description"][:1000],
                "first_seen": row["first_seen"].isoformat(), "last_seen": row["last_seen"].isoformat(),
                "Tag": [{"name": t} for t in [f"mailwarden:confidence={row['confidence']}", *row["tags"]]],
            }
            attributes.append(attribute)
            hashes.append(f"{hashlib.md5(str(row['value']).encode('utf-8')).hexdigest()},{event_uuid}")
        tags = [{"name": "mailwarden"}]
        info = f"Mailwarden: indicators first seen on {day}"
        event = {"uuid": event_uuid, "info": info, "date": day, "timestamp": _timestamp(latest),
                 "publish_timestamp": _timestamp(latest), "published": True, "analysis": "2",
                 "threat_level_id": str(level), "Orgc": org, "Tag": tags, "Attribute": attributes}
        events[event_uuid] = {"Event": event}
        manifest[event_uuid] = {"Orgc": org, "Tag": tags, "info": info, "date": day, "analysis": 2,
                                "threat_level_id": level, "timestamp": int(latest.timestamp())}
    return MispFeed(manifest, events, "".join(f"{line}\n" for line in hashes))


# --- CSV -----------------------------------------------------------------------------------------------

CSV_COLUMNS = ("id", "stix_id", "type", "value", "confidence", "current_confidence", "severity", "action", "source",
               "tags", "first_seen", "last_seen", "valid_from", "valid_until", "sightings")


def indicators_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        values = []
        for column in CSV_COLUMNS:
            value = row.get(column, "")
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, list):
                value = ";".join(value)
            elif value is None:
                value = ""
            values.append(str(value))
        writer.writerow(values)
    return out.getvalue()
