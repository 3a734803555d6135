"""Pulling indicators from other TAXII 2.1 servers and MISP feeds (``[[intel.pull]]``).

    report = pull(engine, source, now=now)     # one run; the source's cursor remembers how far it got

TAXII: the objects of the configured collection URL added after the last run (``added_after``, then ``next``
while ``more``); every ``indicator`` whose STIX pattern is simple (``=`` comparisons joined by OR) gives one
store indicator per comparison, with the object's confidence, validity and labels. A revoked indicator
revokes ours when this source made it. MISP: ``manifest.json``, then each event whose timestamp is newer
than last time; every attribute meant for detection (``to_ids``) of a type the store knows
(domain, hostname, url, ip-src, ip-dst, email-src, sha256, and the ``a|b`` pairs holding one) is recorded.

Pulled indicators are recorded as ``learn`` (see ``store``): a feed raises confidence but never lowers what
someone here set, never revives what someone here revoked, and blocks only when ``action = "block"``.
They are sourced ``feed:<name>`` and tagged so. Nothing is fetched from a source without https (loopback
excepted), and every answer is size-bounded.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import Engine

from mailwarden.errors import MailwardenError
from mailwarden.intel import outbox
from mailwarden.intel.allowlist import AllowList
from mailwarden.intel.indicators import indicators_in_pattern
from mailwarden.intel.settings import PullSettings
from mailwarden.intel.stix import parse_stix_time, stix_time
from mailwarden.intel.store import NewIndicator, _row, record, revoke
from mailwarden.store.db import begin_write

log = logging.getLogger("mailwarden.intel.pull")
TAXII_ACCEPT = "application/taxii+json;version=2.1"
MAX_RESPONSE = 64 * 1024 * 1024
PAGE = 500


class PullError(MailwardenError):
    """Raised when a pull source cannot be read (unreachable, refused, not TAXII or MISP, too large)."""


@dataclass
class PullReport:
    source: str
    objects: int = 0
    recorded: int = 0
    refused: int = 0
    revoked: int = 0
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "objects": self.objects, "recorded": self.recorded, "refused": self.refused,
                "revoked": self.revoked, "errors": self.errors}


def _client(source: PullSettings, environ: dict[str, str] | None = None) -> httpx.Client:
    env = os.environ if environ is None else environ
    headers = {"User-Agent": "Mailwarden"}
    auth: httpx.BasicAuth | None = None
    if source.token_env:
        token = env.get(source.token_env, "").strip()
        if not token:
            raise PullError(f"pull {source.name}: the token variable {source.token_env} is not set")
        headers["Authorization"] = f"Bearer {token}"
    elif source.user_env or source.password_env:
        auth = httpx.BasicAuth(env.get(source.user_env, ""), env.get(source.password_env, ""))
    return httpx.Client(headers=headers, auth=auth, timeout=source.timeout, follow_redirects=False)


def _get_json(client: httpx.Client, url: str, params: dict[str, Any] | None = None,
              accept: str = "application/json") -> tuple[Any, httpx.Headers]:
    try:
        response = client.get(url, params=params, headers={"Accept": accept})
    except httpx.HTTPError as exc:
        raise PullError(f"cannot fetch {url}: {type(exc).__name__}: {exc}") from exc
    if response.status_code != 200:
        raise PullError(f"{url} answered HTTP {response.status_code}")
    if len(response.content) > MAX_RESPONSE:
        raise PullError(f"{url} answered more than {MAX_RESPONSE} bytes")
    try:
        return response.json(), response.headers
    except ValueError as exc:
        raise PullError(f"{url} did not answer JSON") from exc


# --- TAXII -----------------------------------------------------------------------------------------------

def taxii_objects(client: httpx.Client, collection_url: str, added_after: str | None,
                  limit: int) -> Iterator[tuple[dict[str, Any], str | None]]:
    """Every object added after ``added_after``, with the page's last date added."""
    url = collection_url.rstrip("/") + "/objects/"
    params: dict[str, Any] = {"limit": PAGE}
    if added_after:
        params["added_after"] = added_after
    seen = 0
    while True:
        body, headers = _get_json(client, url, params, TAXII_ACCEPT)
        if not isinstance(body, dict):
            raise PullError(f"{url} did not answer a TAXII envelope")
        last = headers.get("X-TAXII-Date-Added-Last")
        for obj in body.get("objects", []) or []:
            if isinstance(obj, dict):
                seen += 1
                yield obj, last
                if seen >= limit:
                    return
        if not body.get("more") or not body.get("next"):
            return
        params = {"limit": PAGE, "next": body["next"]}
        if added_after:
            params["added_after"] = added_after


def _indicator_items(obj: dict[str, Any], source: PullSettings, now: datetime) -> list[NewIndicator]:
    if obj.get("type") != "indicator" or obj.get("pattern_type", "stix") != "stix":
        return []
    confidence = obj.get("confidence", source.confidence)
    if not isinstance(confidence, int) or not 0 <= confidence <= 100:
        confidence = source.confidence
    valid_until = None
    if isinstance(obj.get("valid_until"), str):
        try:
            valid_until = parse_stix_time(obj["valid_until"])
        except ValueError:
            valid_until = None
    labels = [str(x) for x in obj.get("labels", []) or [] if isinstance(x, str)]
    tags = (*labels, *source.tags, f"feed:{source.name}")
    description = str(obj.get("description") or obj.get("name") or "")[:2000]
    return [NewIndicator(kind, value, confidence=confidence, action=source.action, source=source.source,
                         tags=tags, description=description, valid_until=valid_until)
            for kind, value in indicators_in_pattern(str(obj.get("pattern", "")))
            if valid_until is None or valid_until > now]


def pull_taxii(engine: Engine, source: PullSettings, *, now: datetime, allow: AllowList,
               client: httpx.Client | None = None) -> PullReport:
    report = PullReport(source.source)
    cursor_name = f"pull:{source.name}"
    with engine.connect() as connection:
        position = outbox.get_cursor(connection, cursor_name)
    added_after = position.get("added_after") if isinstance(position, dict) else None
    newest = added_after
    own = client or _client(source)
    try:
        for obj, last in taxii_objects(own, source.url, added_after, source.max_objects):
            report.objects += 1
            if last and (newest is None or parse_stix_time(last) > parse_stix_time(newest)):
                newest = last
            _record_object(engine, obj, source, now, allow, report)
    finally:
        if client is None:
            own.close()
    with begin_write(engine) as connection:
        outbox.set_cursor(connection, cursor_name, {"added_after": newest, "run_at": stix_time(now)}, now)
    return report


def _record_object(engine: Engine, obj: dict[str, Any], source: PullSettings, now: datetime, allow: AllowList,
                   report: PullReport) -> None:
    if obj.get("revoked") is True and obj.get("type") == "indicator":
        for kind, value in indicators_in_pattern(str(obj.get("pattern", ""))):
            with begin_write(engine) as connection:
                found = _row(connection, kind, value)
                if found is not None and found["source"] == source.source and not found["revoked"]:
                    revoke(connection, found["id"], now=now, actor=f"feed:{source.name}",
                           reason=f"revoked by {source.name}")
                    report.revoked += 1
        return
    for item in _indicator_items(obj, source, now):
        _record(engine, item, source, now, allow, report)


def _record(engine: Engine, item: NewIndicator, source: PullSettings, now: datetime, allow: AllowList,
            report: PullReport) -> None:
    with begin_write(engine) as connection:
        change = record(connection, item, now=now, actor=f"feed:{source.name}", mode="learn", allow=allow)
    if change.refused:
        report.refused += 1
    else:
        report.recorded += 1


# --- MISP ------------------------------------------------------------------------------------------------

def _misp_values(attribute: dict[str, Any]) -> list[tuple[str, str]]:
    kind = str(attribute.get("type", ""))
    value = str(attribute.get("value", ""))
    parts = value.split("|") if "|" in kind else [value]
    kinds = kind.split("|") if "|" in kind else [kind]
    found = []
    for sub_kind, sub_value in zip(kinds, parts, strict=False):
        if sub_kind in ("domain", "hostname"):
            found.append(("domain", sub_value))
        elif sub_kind == "url":
            found.append(("url", sub_value))
        elif sub_kind in ("ip-src", "ip-dst", "ip"):
            try:
                version = ipaddress.ip_address(sub_value.strip()).version
            except ValueError:
                continue
            found.append((f"ipv{version}", sub_value))
        elif sub_kind in ("email-src", "email"):
            found.append(("email-addr", sub_value))
        elif sub_kind == "sha256":
            found.append(("file-sha256", sub_value))
    return found


def misp_attributes(event: dict[str, Any]) -> Iterator[dict[str, Any]]:
    body = event.get("Event", event)
    if not isinstance(body, dict):
        return
    yield from (a for a in body.get("Attribute", []) or [] if isinstance(a, dict))
    for obj in body.get("Object", []) or []:
        if isinstance(obj, dict):
            yield from (a for a in obj.get("Attribute", []) or [] if isinstance(a, dict))


def pull_misp(engine: Engine, source: PullSettings, *, now: datetime, allow: AllowList,
              client: httpx.Client | None = None) -> PullReport:
    report = PullReport(source.source)
    cursor_name = f"pull:{source.name}"
    base = source.url.rstrip("/") + "/"
    with engine.connect() as connection:
        position = outbox.get_cursor(connection, cursor_name)
    seen: dict[str, int] = dict(position.get("events", {})) if isinstance(position, dict) else {}
    own = client or _client(source)
    try:
        manifest, _ = _get_json(own, base + "manifest.json")
        if not isinstance(manifest, dict):
            raise PullError(f"{base}manifest.json is not a MISP manifest")
        for event_uuid, meta in sorted(manifest.items()):
            stamp = int(str(meta.get("timestamp", 0))) if isinstance(meta, dict) else 0
            if seen.get(event_uuid, -1) >= stamp or not all(c in "0123456789abcdef-" for c in event_uuid.lower()):
                continue
            event, _ = _get_json(own, f"{base}{event_uuid}.json")
            if not isinstance(event, dict):
                report.errors.append(f"{event_uuid}: not a MISP event")
                continue
            for attribute in misp_attributes(event):
                if not attribute.get("to_ids") or attribute.get("deleted"):
                    continue
                report.objects += 1
                tags = [str(t.get("name")) for t in attribute.get("Tag", []) or [] if isinstance(t, dict)]
                for kind, value in _misp_values(attribute):
                    item = NewIndicator(kind, value, confidence=source.confidence, action=source.action,
                                        source=source.source, tags=(*tags, *source.tags, f"feed:{source.name}"),
                                        description=str(attribute.get("comment") or "")[:2000])
                    _record(engine, item, source, now, allow, report)
            seen[event_uuid] = stamp
            if report.objects >= source.max_objects:
                break
    finally:
        if client is None:
            own.close()
    with begin_write(engine) as connection:
        outbox.set_cursor(connection, cursor_name, {"events": seen, "run_at": stix_time(now)}, now)
    return report


def pull(engine: Engine, source: PullSettings, *, now: datetime | None = None, allow: AllowList | None = None,
         client: httpx.Client | None = None) -> PullReport:
    """One run of one source (raises PullError when it cannot be read at all)."""
    when = now or datetime.now(UTC)
    allow = allow or AllowList.for_org()
    if source.kind == "taxii":
        return pull_taxii(engine, source, now=when, allow=allow, client=client)
    return pull_misp(engine, source, now=when, allow=allow, client=client)

