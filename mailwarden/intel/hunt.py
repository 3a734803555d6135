"""The retro-hunt: which kept messages carried an indicator, and (``remediate``) removing them.

    result = retrohunt(engine, indicator, blobs=blobs, spool=spool, actor="apikey:soar", remediate=True, now=now)
    result.to_dict() -> {"hunt_id", "matches": [...], "actions": [...], "covered": {...}}

Where it looks (``covered`` says so in every result):

* the archive (``mailwarden.gateway.archive``, migration 0006): every accepted message, delivered, warned or
  quarantined, found by its indexed indicators: ``sender`` for an address, ``domain`` and ``url_host`` for a
  domain (its subdomains included through the registrable domain), ``attachment`` for a hash, the client IP
  and ``url_host`` for an address, and for a URL its host, each candidate then confirmed by parsing the
  archived message and comparing its links;
* the indicator's sightings from rejected messages (the gateway keeps nothing of them: reported, not
  removable).

Each archived match is recorded as a sighting (source ``hunt``). With ``remediate``, the matches are removed
from the archive through ``archive.remove`` (its removal log; the quarantined copy goes too), and every
match that had been delivered to a mailbox is recorded as ``mailbox_removal_pending`` until a mailbox
connector exists. The hunt, its matches and every action are kept (``intel_hunts``), audited, sent as a
``retrohunt.completed`` event, and returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, Engine, Table, insert, or_, select

from mailwarden.gateway import events
from mailwarden.intel.store import SIGHTINGS, Sighting, _by_id, _sight, audit
from mailwarden.store.db import begin_write, store_errors
from mailwarden.store.models import Base

HUNTS: Table = Base.metadata.tables["intel_hunts"]
RETROHUNT_COMPLETED = "retrohunt.completed"
MAX_MATCHES = 10_000


@dataclass
class HuntResult:
    hunt_id: int | None = None
    indicator_id: int = 0
    matches: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    covered: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"hunt_id": self.hunt_id, "indicator_id": self.indicator_id, "matches": self.matches,
                "actions": self.actions, "covered": self.covered}


def _archive_tables() -> tuple[Table, Table] | None:
    archive = Base.metadata.tables.get("archive_messages")
    carried = Base.metadata.tables.get("archive_indicators")
    return (archive, carried) if archive is not None and carried is not None else None


def _candidates(engine: Engine, kind: str, value: str) -> list[dict[str, Any]]:
    """Archived messages whose indexed indicators say they may carry (kind, value)."""
    tables = _archive_tables()
    if tables is None:
        return []
    archive, carried = tables
    by_kind: list[tuple[str, str]] = []
    by_suffix: str | None = None
    client_ip: str | None = None
    if kind == "email-addr":
        by_kind = [("sender", value)]
    elif kind == "domain":
        by_kind = [("domain", value), ("url_host", value)]
        by_suffix = value
    elif kind == "url":
        by_kind = [("url_host", (urlsplit(value).hostname or "").lower())]
    elif kind in ("ipv4", "ipv6"):
        by_kind = [("url_host", value)]
        client_ip = value
    elif kind == "file-sha256":
        by_kind = [("attachment", value)]
    conditions: list[ColumnElement[bool]] = [
        archive.c.id.in_(select(carried.c.archive_id).where(carried.c.kind == k, carried.c.value == v))
        for k, v in by_kind]
    if by_suffix is not None:
        pattern = "%." + by_suffix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(archive.c.id.in_(select(carried.c.archive_id).where(
            carried.c.kind == "url_host", carried.c.value.like(pattern, escape="\\"))))
    if client_ip is not None:
        conditions.append(archive.c.client_ip == client_ip)
    if not conditions:
        return []
    query = select(archive).where(or_(*conditions)).order_by(archive.c.id).limit(MAX_MATCHES)
    with store_errors("search the archive in", engine.url), engine.connect() as connection:
        return [dict(r._mapping) for r in connection.execute(query)]


def _confirmed(engine: Engine, blobs: Any, row: dict[str, Any], url: str) -> bool:
    """Whether the archived message really has this link (the index only knows its host)."""
    from mailwarden.gateway import archive
    from mailwarden.message import parse

    if blobs is None:
        return False
    try:
        raw = archive.raw(engine, blobs, int(row["id"]))
    except Exception:  # a missing or damaged blob: it cannot be confirmed
        return False
    return raw is not None and any(u.url == url for u in parse(raw).urls)


def _match(row: dict[str, Any]) -> dict[str, Any]:
    return {"where": "archive", "archive_id": row["id"], "message_ref": row["message_ref"],
            "message_id": row["message_id"], "received_at": row["received_at"].isoformat(),
            "header_from": row["header_from"], "recipients": list(row["recipients"] or []),
            "verdict": row["verdict"], "actions": list(row["actions"] or [])}


def retrohunt(engine: Engine, indicator_id: int, *, now: datetime, actor: str, remediate: bool = False,
              blobs: Any = None, spool: Any = None, producer: str = "") -> HuntResult | None:
    """Hunt (and with ``remediate`` remove) what carried the indicator; None when there is no such indicator."""
    with engine.connect() as connection:
        row = _by_id(connection, indicator_id)
    if row is None:
        return None
    kind, value = row["type"], row["value"]
    result = HuntResult(indicator_id=indicator_id)
    archive_present = _archive_tables() is not None
    result.covered = {"archive": archive_present, "rejected": "sightings only (rejected mail is not kept)",
                      "mailbox": "no mailbox connector: delivered copies are queued for removal"}
    for candidate in _candidates(engine, kind, value):
        if kind == "url" and not _confirmed(engine, blobs, candidate, value):
            continue
        result.matches.append(_match(candidate))
    with engine.connect() as connection:
        rejected = connection.execute(select(SIGHTINGS).where(SIGHTINGS.c.indicator_id == indicator_id,
                                                              SIGHTINGS.c.verdict == "reject")
                                      .order_by(SIGHTINGS.c.id).limit(MAX_MATCHES))
        archived_refs = {m["message_ref"] for m in result.matches}
        for sighting in rejected:
            if sighting.message_ref not in archived_refs:
                result.matches.append({"where": "rejected", "message_ref": sighting.message_ref,
                                       "message_id": sighting.message_id, "received_at": sighting.seen_at.isoformat(),
                                       "verdict": "reject", "actions": ["reject"]})
    archived = [m for m in result.matches if m["where"] == "archive"]
    if remediate and archived:
        from mailwarden.gateway import archive

        removal = archive.remove(engine, blobs, who=f"retrohunt:{actor}", now=now,
                                 ids=[m["archive_id"] for m in archived], spool=spool)
        for match in archived:
            result.actions.append({"action": "removed_from_archive", "message_ref": match["message_ref"],
                                   "archive_id": match["archive_id"], "removal_id": removal.removal_id,
                                   "time": now.isoformat()})
            if "quarantine" in match["actions"]:
                result.actions.append({"action": "quarantine_deleted", "message_ref": match["message_ref"],
                                       "time": now.isoformat()})
            if {"deliver", "banner"} & set(match["actions"]):
                result.actions.append({"action": "mailbox_removal_pending", "message_ref": match["message_ref"],
                                       "recipients": match["recipients"], "time": now.isoformat()})
    with store_errors("record a retro-hunt in", engine.url), begin_write(engine) as connection:
        fresh = _by_id(connection, indicator_id) or row
        for match in archived:
            _sight(connection, fresh, Sighting(match["message_ref"], match["message_id"], "hunt", match["verdict"],
                                               "found by a retro-hunt"), now, producer or "Mailwarden")
            fresh = _by_id(connection, indicator_id) or fresh
        result.hunt_id = int(connection.execute(insert(HUNTS).values(
            indicator_id=indicator_id, started_at=now, requested_by=actor[:200], remediate=remediate,
            matches=result.matches, actions=result.actions, covered=result.covered).returning(HUNTS.c.id))
            .scalar_one())
        audit(connection, now, actor, "retrohunt", indicator_id, hunt_id=result.hunt_id, matches=len(result.matches),
              remediate=remediate)
        for action in result.actions:
            audit(connection, now, actor, action["action"], indicator_id, hunt_id=result.hunt_id,
                  message_ref=action["message_ref"])
        events.add_event(connection, RETROHUNT_COMPLETED, {"indicator": {"id": indicator_id, "type": kind,
                                                                         "value": value}, **result.to_dict()}, now)
    return result


def list_hunts(engine: Engine, indicator_id: int) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(select(HUNTS).where(HUNTS.c.indicator_id == indicator_id).order_by(HUNTS.c.id))
        return [{**dict(r._mapping), "started_at": r.started_at.isoformat()} for r in rows]

