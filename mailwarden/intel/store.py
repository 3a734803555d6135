"""The indicator store: create, update, revoke, search; sightings; the audit log; the lists the scan reads.

    change = record(connection, NewIndicator("domain", "evil.example", confidence=90, action="block"),
                    now=now, actor="apikey:soar", allow=allow)
    change.indicator  -> the stored row as a dict (``public``), or None when ``change.refused`` says why not

Two ways to record an indicator that is already there:

* ``assert`` (a person, an API client, a feed that says what it knows): the confidence, action, severity,
  validity and description given replace the stored ones, tags are added, a revoked indicator is live again;
* ``learn`` (a detector seeing it again): the confidence only rises, tags are added, the validity is pushed
  out (when less than half of it is left), ``block`` is kept, and a revoked indicator stays revoked.

Every change is one transaction with: a new STIX version of the indicator (``stix.add_version``), an
``indicator.upserted`` or ``indicator.revoked`` event in the outbox, an audit row, and, when a blocking
indicator changed, a new list version (``lists_version``), which the gateway polls to reload its lists.
Values on the allow-list are refused (``refused`` says why): they are never stored, published or blocked.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Select, Table, and_, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from mailwarden.gateway import events
from mailwarden.gateway.paging import DEFAULT_LIMIT, Page, decode_cursor, encode_cursor
from mailwarden.intel import IntelLists, stix
from mailwarden.intel.allowlist import AllowList
from mailwarden.intel.indicators import (
    ACTIONS,
    LIFETIME,
    SEVERITIES,
    TYPES,
    IndicatorError,
    current_confidence,
    default_severity,
    normalise,
    stix_id,
)
from mailwarden.store.db import store_errors
from mailwarden.store.models import Base

INDICATORS: Table = Base.metadata.tables["intel_indicators"]
SIGHTINGS: Table = Base.metadata.tables["intel_sightings"]
AUDIT: Table = Base.metadata.tables["intel_audit"]
STATE: Table = Base.metadata.tables["intel_state"]

INDICATOR_UPSERTED = "indicator.upserted"
INDICATOR_REVOKED = "indicator.revoked"
LISTS_VERSION = "lists"
MAX_TAGS = 50
MAX_TAG_CHARS = 200
_PUBLISHED = ("confidence", "severity", "action", "tags", "description", "valid_from", "valid_until", "revoked")


@dataclass(frozen=True)
class NewIndicator:
    """An indicator as someone reports it (``value`` is normalised by ``record``)."""

    type: str
    value: str
    confidence: int = 50
    action: str = "monitor"
    severity: str | None = None
    source: str = "api"
    tags: tuple[str, ...] = ()
    description: str = ""
    valid_until: datetime | None = None

    def checked(self) -> NewIndicator:
        """The same with a normalised value; IndicatorError names what is wrong."""
        if self.type not in TYPES:
            raise IndicatorError(f"unknown indicator type {self.type!r}: one of {', '.join(TYPES)}")
        if not 0 <= self.confidence <= 100:
            raise IndicatorError("confidence must be from 0 to 100")
        if self.action not in ACTIONS:
            raise IndicatorError(f"action must be one of {', '.join(ACTIONS)}")
        if self.severity is not None and self.severity not in SEVERITIES:
            raise IndicatorError(f"severity must be one of {', '.join(SEVERITIES)}")
        if self.valid_until is not None and self.valid_until.tzinfo is None:
            raise IndicatorError("valid_until needs a timezone")
        return replace(self, value=normalise(self.type, self.value), tags=clean_tags(self.tags))


@dataclass(frozen=True)
class Sighting:
    """A message that carried an indicator."""

    message_ref: str
    message_id: str = ""
    source: str = "gateway"
    verdict: str = ""
    detail: str = ""


@dataclass
class Change:
    """What ``record``, ``update`` or ``revoke`` did."""

    indicator: dict[str, Any] | None = None
    created: bool = False
    changed: bool = False
    refused: str = ""
    sighted: bool = False
    changes: dict[str, Any] = field(default_factory=dict)


def clean_tags(tags: Iterable[str]) -> tuple[str, ...]:
    found = {" ".join(str(t).split())[:MAX_TAG_CHARS] for t in tags}
    return tuple(sorted(t for t in found if t))[:MAX_TAGS]


def _insert(connection: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    return postgresql.insert(table) if connection.dialect.name == "postgresql" else sqlite.insert(table)


def public(row: Mapping[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """A stored indicator as the API shows it, with its decayed confidence and whether it is in force."""
    when = now or datetime.now(UTC)
    valid_until = row["valid_until"]
    active = not row["revoked"] and (valid_until is None or valid_until > when)
    result = {key: (value.isoformat() if isinstance(value, datetime) else value) for key, value in row.items()}
    result["tags"] = list(row["tags"] or [])
    result["current_confidence"] = current_confidence(row["confidence"], row["valid_from"], valid_until, when)
    result["active"] = active
    return result


def _next_modified(old: datetime | None, now: datetime) -> datetime:
    when = stix.millis(now)
    if old is not None and when <= old:
        when = stix.millis(old) + timedelta(milliseconds=1)
    return when


# --- the list version --------------------------------------------------------------------------------

def lists_version(connection: Connection) -> int:
    row = connection.execute(select(STATE.c.number).where(STATE.c.name == LISTS_VERSION)).first()
    return int(row.number) if row is not None else 0


def bump_lists_version(connection: Connection, now: datetime) -> None:
    done = connection.execute(update(STATE).where(STATE.c.name == LISTS_VERSION)
                              .values(number=STATE.c.number + 1, changed_at=now))
    if not done.rowcount:
        statement = _insert(connection, STATE).values(name=LISTS_VERSION, number=1, text="", changed_at=now)
        connection.execute(statement.on_conflict_do_update(index_elements=["name"],
                                                           set_={"number": STATE.c.number + 1, "changed_at": now}))


# --- writing -------------------------------------------------------------------------------------------

def _audit(connection: Connection, now: datetime, actor: str, action: str, indicator_id: int | None,
           detail: dict[str, Any]) -> None:
    connection.execute(insert(AUDIT).values(time=now, actor=actor[:200], action=action, indicator_id=indicator_id,
                                            detail=detail))


def audit(connection: Connection, now: datetime, actor: str, action: str, indicator_id: int | None = None,
          **detail: Any) -> None:
    """An audit row for something done to or because of an indicator (hunts, removals, replays)."""
    _audit(connection, now, actor, action, indicator_id, _jsonable(detail))


def _jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else list(v) if isinstance(v, tuple) else v)
            for k, v in values.items()}


def _publish(connection: Connection, row: Mapping[str, Any], now: datetime, producer: str) -> None:
    """The new STIX version of the indicator, and the identities and relationships its tags name."""
    creator = stix.identity_id(producer)
    stix.add_once(connection, stix.identity_object(producer), now)
    stix.add_version(connection, stix.indicator_object(row, creator), now=now, indicator_id=row["id"])
    tags = list(row["tags"] or [])
    partners = [t.partition(":")[2] for t in tags if t.startswith("partner:") and t.partition(":")[2]]
    for tag in tags:
        name = tag.partition(":")[2]
        if tag.startswith("lookalike-of:") and name:
            owner = partners[0] if partners else producer if "own-domain" in tags else name
            description = f"owner of {name}" if owner == name else ""
            stix.add_once(connection, stix.identity_object(owner, description=description), now)
            stix.add_once(connection, stix.relationship_object(
                row["stix_id"], "lookalike-of", stix.identity_id(owner), creator,
                f"{row['value']} imitates {name}"), now)
        elif tag.startswith("campaign:") and name:
            campaign = stix.campaign_object(name, creator)
            stix.add_once(connection, campaign, now)
            stix.add_once(connection, stix.relationship_object(row["stix_id"], "indicates", campaign["id"], creator),
                          now)


def _row(connection: Connection, kind: str, value: str) -> dict[str, Any] | None:
    found = connection.execute(select(INDICATORS).where(INDICATORS.c.type == kind, INDICATORS.c.value == value)).first()
    return dict(found._mapping) if found is not None else None


def _by_id(connection: Connection, indicator_id: int) -> dict[str, Any] | None:
    found = connection.execute(select(INDICATORS).where(INDICATORS.c.id == indicator_id)).first()
    return dict(found._mapping) if found is not None else None


def _merge(old: Mapping[str, Any], item: NewIndicator, mode: str, now: datetime) -> dict[str, Any]:
    """The columns that change when ``item`` is recorded again over ``old`` (see the module docstring)."""
    tags = list(clean_tags([*old["tags"], *item.tags]))
    values: dict[str, Any] = {"tags": tags, "last_seen": max(old["last_seen"], now)}
    if mode == "assert":
        values.update(confidence=item.confidence, action=item.action,
                      severity=item.severity or default_severity(item.confidence, item.action), source=item.source,
                      revoked=False, revoked_at=None, revoked_reason="")
        if item.valid_until is not None:
            values["valid_until"] = item.valid_until
        elif old["valid_until"] is not None and old["valid_until"] <= now:
            values.update(valid_from=now, valid_until=now + LIFETIME[item.type])
        if item.description:
            values["description"] = item.description[:2000]
        return values
    action = "block" if "block" in (old["action"], item.action) else "monitor"
    confidence = max(old["confidence"], item.confidence)
    values.update(confidence=confidence, action=action)
    if item.severity is not None or confidence != old["confidence"] or action != old["action"]:
        values["severity"] = max(old["severity"], item.severity or default_severity(confidence, action),
                                 key=SEVERITIES.index)
    lifetime = LIFETIME[item.type]
    until = old["valid_until"]
    if until is not None and until - now < lifetime / 2:
        values["valid_until"] = max(until, item.valid_until or now + lifetime)
        if until <= now:
            values["valid_from"] = now
    return values


def record(connection: Connection, item: NewIndicator, *, now: datetime, actor: str, mode: str = "assert",
           allow: AllowList | None = None, sighting: Sighting | None = None, producer: str = "") -> Change:
    """Create or update one indicator in the caller's transaction (see the module docstring)."""
    try:
        item = item.checked()
    except IndicatorError as exc:
        return Change(refused=str(exc))
    reason = (allow or AllowList.for_org()).reason(item.type, item.value)
    if reason is not None:
        return Change(refused=f"allow-listed: {reason}")
    producer = stix.producer_name(producer)
    old = _row(connection, item.type, item.value)
    if old is None:
        values: dict[str, Any] = {
            "stix_id": stix_id(item.type, item.value), "type": item.type, "value": item.value,
            "confidence": item.confidence, "action": item.action,
            "severity": item.severity or default_severity(item.confidence, item.action), "source": item.source,
            "tags": list(item.tags), "description": item.description[:2000], "first_seen": now, "last_seen": now,
            "valid_from": stix.millis(now), "valid_until": item.valid_until or now + LIFETIME[item.type],
            "revoked": False, "revoked_reason": "", "sightings": 0, "created_at": stix.millis(now),
            "modified_at": stix.millis(now),
        }
        if values["valid_until"] <= values["valid_from"]:
            return Change(refused="valid_until must be in the future")
        inserted = connection.execute(_insert(connection, INDICATORS).values(**values)
                                      .on_conflict_do_nothing(index_elements=["type", "value"])
                                      .returning(INDICATORS.c.id)).first()
        if inserted is None:  # another writer created it a moment ago: record over theirs
            return record(connection, item, now=now, actor=actor, mode=mode, allow=allow, sighting=sighting,
                          producer=producer)
        row = {**values, "id": int(inserted.id), "revoked_at": None}
        change = Change(created=True, changed=True,
                        changes=_jsonable({k: values[k] for k in _PUBLISHED if k in values}))
        _audit(connection, now, actor, "create", row["id"], {"after": public(row, now)})
        if item.action == "block":
            bump_lists_version(connection, now)
    else:
        row = old
        if mode == "learn" and old["revoked"]:
            values = {"last_seen": max(old["last_seen"], now)}
        else:
            values = _merge(old, item, mode, now)
        changes = {k: v for k, v in values.items() if k in _PUBLISHED and v != old[k]}
        if changes:
            values["modified_at"] = _next_modified(old["modified_at"], now)
        connection.execute(update(INDICATORS).where(INDICATORS.c.id == old["id"]).values(**values))
        row = {**old, **values}
        change = Change(changed=bool(changes), changes=_jsonable(changes))
        if changes:
            _audit(connection, now, actor, "update", row["id"],
                   {"before": {k: public(old, now)[k] for k in changes}, "after": _jsonable(changes)})
            if "block" in (old["action"], row["action"]):
                bump_lists_version(connection, now)
    if change.changed:
        _publish(connection, row, now, producer)
    if sighting is not None:
        change.sighted = _sight(connection, row, sighting, now, producer)
        row = _by_id(connection, row["id"]) or row
    if change.changed:
        events.add_event(connection, INDICATOR_UPSERTED, {"created": change.created, "actor": actor,
                                                          "indicator": public(row, now)}, now)
    change.indicator = public(row, now)
    return change


def _sight(connection: Connection, row: Mapping[str, Any], sighting: Sighting, now: datetime, producer: str) -> bool:
    statement = _insert(connection, SIGHTINGS).values(
        indicator_id=row["id"], message_ref=sighting.message_ref[:200], message_id=sighting.message_id[:1000],
        seen_at=now, source=sighting.source, verdict=sighting.verdict, detail=sighting.detail[:1000])
    inserted = connection.execute(statement.on_conflict_do_nothing(index_elements=["indicator_id", "message_ref"])
                                  .returning(SIGHTINGS.c.id)).first()
    if inserted is None:
        return False
    connection.execute(update(INDICATORS).where(INDICATORS.c.id == row["id"])
                       .values(sightings=INDICATORS.c.sightings + 1))
    first = connection.execute(select(func.min(SIGHTINGS.c.seen_at)).where(SIGHTINGS.c.indicator_id == row["id"]))
    count = int(row["sightings"]) + 1
    creator = stix.identity_id(producer)
    stix.add_once(connection, stix.identity_object(producer), now)
    stix.add_version(connection, stix.sighting_object(row, creator, first.scalar() or now, now, count, now), now=now,
                     indicator_id=row["id"])
    return True


def update_indicator(connection: Connection, indicator_id: int, changes: Mapping[str, Any], *, now: datetime,
                     actor: str, allow: AllowList | None = None, producer: str = "") -> Change | None:
    """Change some of confidence, severity, action, valid_until, tags (replaced), description; None if unknown."""
    old = _by_id(connection, indicator_id)
    if old is None:
        return None
    wanted = {k: v for k, v in changes.items() if v is not None}
    if "tags" in wanted:
        wanted["tags"] = list(clean_tags(wanted["tags"]))
    if "confidence" in wanted and not 0 <= int(wanted["confidence"]) <= 100:
        return Change(refused="confidence must be from 0 to 100")
    if wanted.get("action", "block") not in ACTIONS or wanted.get("severity", "low") not in SEVERITIES:
        return Change(refused="unknown action or severity")
    until = wanted.get("valid_until")
    if until is not None and (until.tzinfo is None or until <= old["valid_from"]):
        return Change(refused="valid_until must have a timezone and come after valid_from")
    if not old["revoked"]:
        reason = (allow or AllowList.for_org()).reason(old["type"], old["value"])
        if reason is not None and wanted.get("action") == "block":
            return Change(refused=f"allow-listed: {reason}")
    diff = {k: v for k, v in wanted.items() if k in _PUBLISHED and v != old[k]}
    row = dict(old)
    if diff:
        diff_values = {**diff, "modified_at": _next_modified(old["modified_at"], now)}
        connection.execute(update(INDICATORS).where(INDICATORS.c.id == indicator_id).values(**diff_values))
        row.update(diff_values)
        _audit(connection, now, actor, "update", indicator_id,
               {"before": {k: public(old, now)[k] for k in diff}, "after": _jsonable(diff)})
        if "block" in (old["action"], row["action"]) and not row["revoked"]:
            bump_lists_version(connection, now)
        _publish(connection, row, now, stix.producer_name(producer))
        events.add_event(connection, INDICATOR_UPSERTED, {"created": False, "actor": actor,
                                                          "indicator": public(row, now)}, now)
    return Change(indicator=public(row, now), changed=bool(diff), changes=_jsonable(diff))


def revoke(connection: Connection, indicator_id: int, *, now: datetime, actor: str, reason: str = "",
           producer: str = "") -> Change | None:
    """Revoke an indicator for good (kept, published as revoked, no longer in any list); None if unknown."""
    old = _by_id(connection, indicator_id)
    if old is None:
        return None
    if old["revoked"]:
        return Change(indicator=public(old, now))
    values = {"revoked": True, "revoked_at": now, "revoked_reason": reason[:500] or f"revoked by {actor}",
              "modified_at": _next_modified(old["modified_at"], now)}
    connection.execute(update(INDICATORS).where(INDICATORS.c.id == indicator_id).values(**values))
    row = {**old, **values}
    _audit(connection, now, actor, "revoke", indicator_id, {"reason": values["revoked_reason"]})
    if old["action"] == "block":
        bump_lists_version(connection, now)
    _publish(connection, row, now, stix.producer_name(producer))
    events.add_event(connection, INDICATOR_REVOKED, {"actor": actor, "indicator": public(row, now)}, now)
    return Change(indicator=public(row, now), changed=True, changes={"revoked": True})


# --- reading -------------------------------------------------------------------------------------------

def get(engine: Engine, indicator_id: int, now: datetime | None = None) -> dict[str, Any] | None:
    with store_errors("read an indicator from", engine.url), engine.connect() as connection:
        row = _by_id(connection, indicator_id)
    return public(row, now) if row is not None else None


def find(engine: Engine, kind: str, value: str) -> dict[str, Any] | None:
    """The stored indicator for (type, value) as given (normalised first); None if there is none."""
    try:
        value = normalise(kind, value)
    except IndicatorError:
        return None
    with store_errors("read an indicator from", engine.url), engine.connect() as connection:
        row = _row(connection, kind, value)
    return public(row) if row is not None else None


@dataclass(frozen=True)
class Filters:
    """What ``search`` narrows by; every field optional."""

    type: str | None = None
    value: str | None = None  # exact (normalised when it can be)
    contains: str | None = None  # a substring of the value
    source: str | None = None
    tag: str | None = None
    action: str | None = None
    min_confidence: int | None = None
    active: bool | None = None  # True: not revoked and not expired; False: revoked or expired
    modified_since: datetime | None = None


def _filtered(query: Select[Any], filters: Filters, now: datetime) -> Select[Any]:
    c = INDICATORS.c
    if filters.type:
        query = query.where(c.type == filters.type)
    if filters.value:
        value = filters.value
        if filters.type:
            try:
                value = normalise(filters.type, value)
            except IndicatorError:
                value = value.strip().lower()
        query = query.where(c.value == value)
    if filters.contains:
        pattern = filters.contains.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(c.value.like(f"%{pattern}%", escape="\\"))
    if filters.source:
        query = query.where(c.source == filters.source)
    if filters.action:
        query = query.where(c.action == filters.action)
    if filters.min_confidence is not None:
        query = query.where(c.confidence >= filters.min_confidence)
    if filters.active is True:
        query = query.where(c.revoked.is_(False), or_(c.valid_until.is_(None), c.valid_until > now))
    elif filters.active is False:
        query = query.where(or_(c.revoked.is_(True), and_(c.valid_until.is_not(None), c.valid_until <= now)))
    if filters.modified_since is not None:
        query = query.where(c.modified_at > filters.modified_since)
    return query


def search(engine: Engine, filters: Filters = Filters(), *, cursor: str | None = None, limit: int = DEFAULT_LIMIT,
           now: datetime | None = None) -> Page:
    """One page of indicators, newest first (cursor pagination by id)."""
    when = now or datetime.now(UTC)
    limit = max(1, min(limit, 1000))
    query = _filtered(select(INDICATORS), filters, when)
    if cursor:
        query = query.where(INDICATORS.c.id < decode_cursor(cursor))
    # Tag filters run in Python over a bounded window: JSON containment differs between the two databases.
    batch = limit + 1 if not filters.tag else max(4 * limit, 200)
    found: list[dict[str, Any]] = []
    last_id: int | None = None
    with store_errors("search the indicators in", engine.url), engine.connect() as connection:
        while len(found) <= limit:
            page_query = query if last_id is None else query.where(INDICATORS.c.id < last_id)
            rows = [dict(r._mapping) for r in connection.execute(page_query.order_by(INDICATORS.c.id.desc())
                                                                  .limit(batch))]
            if not rows:
                break
            last_id = rows[-1]["id"]
            found.extend(r for r in rows if not filters.tag or filters.tag in (r["tags"] or []))
            if len(rows) < batch:
                break
    more = len(found) > limit
    items = found[:limit]
    return Page([public(r, when) for r in items], encode_cursor(items[-1]["id"]) if more and items else None)


def sightings_of(engine: Engine, indicator_id: int, *, cursor: str | None = None,
                 limit: int = DEFAULT_LIMIT) -> Page:
    from mailwarden.gateway.paging import page

    query = select(SIGHTINGS).where(SIGHTINGS.c.indicator_id == indicator_id)
    with store_errors("read sightings from", engine.url), engine.connect() as connection:
        return page(connection, SIGHTINGS, query, cursor, limit)


def audit_log(engine: Engine, *, indicator_id: int | None = None, actor: str | None = None,
              cursor: str | None = None, limit: int = DEFAULT_LIMIT) -> Page:
    from mailwarden.gateway.paging import page

    query = select(AUDIT)
    if indicator_id is not None:
        query = query.where(AUDIT.c.indicator_id == indicator_id)
    if actor:
        query = query.where(AUDIT.c.actor == actor)
    with store_errors("read the audit log from", engine.url), engine.connect() as connection:
        return page(connection, AUDIT, query, cursor, limit)


def active_rows(connection: Connection, now: datetime, *, types: Iterable[str] = TYPES,
                actions: Iterable[str] = ACTIONS, batch: int = 5000) -> Iterator[dict[str, Any]]:
    """Every indicator in force (not revoked, not expired) of these types, in id order, read in batches."""
    last = 0
    c = INDICATORS.c
    while True:
        query = (select(INDICATORS).where(c.id > last, c.type.in_(list(types)), c.action.in_(list(actions)),
                                          c.revoked.is_(False), or_(c.valid_until.is_(None), c.valid_until > now))
                 .order_by(c.id).limit(batch))
        rows = [dict(r._mapping) for r in connection.execute(query)]
        yield from rows
        if len(rows) < batch:
            return
        last = rows[-1]["id"]


def load_lists(engine: Engine, allow: AllowList | None = None, now: datetime | None = None) -> IntelLists:
    """The blocking indicators in force, as the sets the ``intel`` analyzer checks."""
    when = now or datetime.now(UTC)
    allow = allow or AllowList.for_org()
    lists = IntelLists()
    targets = {"domain": lists.blocked_domains, "url": lists.blocked_urls, "ipv4": lists.blocked_ips,
               "ipv6": lists.blocked_ips, "email-addr": lists.blocked_senders, "file-sha256": lists.blocked_hashes}
    with store_errors("load the block lists from", engine.url), engine.connect() as connection:
        lists.version = lists_version(connection)
        for row in active_rows(connection, when, actions=("block",)):
            if allow.reason(row["type"], row["value"]) is not None:
                continue
            targets[row["type"]].add(row["value"])
            until = row["valid_until"]
            if until is not None and (lists.expires_at is None or until < lists.expires_at):
                lists.expires_at = until
    return lists
