"""STIX 2.1 objects for the store, built with the ``stix2`` library, and the versions the TAXII server serves.

    indicator_object(row, identity)   -> dict   an Indicator with a STIX pattern, confidence, validity, labels
    sighting_object(row, identity)    -> dict   a Sighting of it: count, first and last seen, where (us)
    identity_object(name)             -> dict   the organisation, or a partner a lookalike imitates
    relationship_object(...)          -> dict   ``lookalike-of`` a partner's identity, ``indicates`` a campaign
    bundle(objects)                   -> dict   a Bundle (``mailwarden intel export --format stix``)

Every change to an indicator is written as a new version (``modified`` later than the last) to
``intel_objects`` in the same transaction; identities, campaigns and relationships are written once. Ids
are stable (derived from what the object is about), so a rebuild or another node names them the same.
Custom properties carry what STIX has no word for: ``x_mailwarden_action``, ``x_mailwarden_severity``,
``x_mailwarden_source``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import stix2  # type: ignore[import-untyped]
from sqlalchemy import Connection, Table, insert, select, update

from mailwarden import __version__
from mailwarden.intel.indicators import stable_uuid, stix_pattern
from mailwarden.store.models import Base

OBJECTS: Table = Base.metadata.tables["intel_objects"]
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)  # ``created`` of the objects that never change
SPEC_VERSION = "2.1"
STIX_MEDIA_TYPE = "application/stix+json;version=2.1"


def millis(when: datetime) -> datetime:
    """STIX timestamps carry milliseconds: anything finer would not survive a round trip."""
    return when.astimezone(UTC).replace(microsecond=when.microsecond // 1000 * 1000)


def stix_time(when: datetime) -> str:
    when = millis(when)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def parse_stix_time(text: str) -> datetime:
    """A STIX/TAXII timestamp (``2026-03-02T12:00:00.123Z``, any precision) as an aware datetime."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    if "." in value:
        head, _, rest = value.partition(".")
        digits = "".join(itertools.takewhile(str.isdigit, rest))
        zone = rest[len(digits):]
        value = f"{head}.{(digits + '000000')[:6]}{zone}"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without a timezone: {text!r}")
    return parsed.astimezone(UTC)


def _plain(obj: stix2.base._STIXBase) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(obj.serialize())
    return found


def identity_id(name: str) -> str:
    return f"identity--{stable_uuid('identity', name.strip().lower())}"


def identity_object(name: str, *, description: str = "") -> dict[str, Any]:
    return _plain(stix2.v21.Identity(id=identity_id(name), created=EPOCH, modified=EPOCH, name=name,
                                     identity_class="organization", description=description or None))


def campaign_object(name: str, created_by: str) -> dict[str, Any]:
    return _plain(stix2.v21.Campaign(id=f"campaign--{stable_uuid('campaign', name.lower())}", created=EPOCH,
                                     modified=EPOCH, name=name, created_by_ref=created_by))


def relationship_object(source: str, kind: str, target: str, created_by: str, description: str = "") -> dict[str, Any]:
    return _plain(stix2.v21.Relationship(
        id=f"relationship--{stable_uuid('relationship', source, kind, target)}", created=EPOCH, modified=EPOCH,
        source_ref=source, relationship_type=kind, target_ref=target, created_by_ref=created_by,
        description=description or None))


def indicator_object(row: Mapping[str, Any], created_by: str) -> dict[str, Any]:
    """The STIX Indicator of a store row (``intel_indicators``)."""
    valid_from = millis(row["valid_from"])
    valid_until = row["valid_until"]
    if valid_until is not None and millis(valid_until) <= valid_from:
        valid_until = valid_from + timedelta(milliseconds=1)
    kind = "malicious-activity" if row["action"] == "block" else "anomalous-activity"
    return _plain(stix2.v21.Indicator(
        id=row["stix_id"], created=millis(row["created_at"]), modified=millis(row["modified_at"]),
        name=f"{row['type']} {row['value']}"[:250], description=row["description"] or
        f"{row['type']} seen by Mailwarden ({row['source']})", indicator_types=[kind],
        pattern=stix_pattern(row["type"], row["value"]), pattern_type="stix", pattern_version=SPEC_VERSION,
        valid_from=valid_from, valid_until=millis(valid_until) if valid_until is not None else None,
        confidence=int(row["confidence"]), labels=list(row["tags"]) or None, revoked=bool(row["revoked"]),
        created_by_ref=created_by, x_mailwarden_action=row["action"], x_mailwarden_severity=row["severity"],
        x_mailwarden_source=row["source"], allow_custom=True))


def sighting_object(row: Mapping[str, Any], created_by: str, first_seen: datetime, last_seen: datetime,
                    count: int, modified: datetime) -> dict[str, Any]:
    first, last = millis(first_seen), millis(last_seen)
    return _plain(stix2.v21.Sighting(
        id=f"sighting--{stable_uuid('sighting', row['stix_id'])}", created=min(first, millis(modified)),
        modified=millis(modified), sighting_of_ref=row["stix_id"], first_seen=first, last_seen=max(first, last),
        count=max(1, min(count, 999_999_999)), where_sighted_refs=[created_by], created_by_ref=created_by))


def bundle(objects: Iterable[Mapping[str, Any]], bundle_id: str | None = None) -> dict[str, Any]:
    """A STIX 2.1 bundle of already-built objects (a new id unless ``bundle_id`` names the content)."""
    items = list(objects)
    made = stix2.v21.Bundle(objects=[], allow_custom=True, **({"id": bundle_id} if bundle_id else {}))
    result: dict[str, Any] = json.loads(made.serialize())
    result["objects"] = items
    return result


def producer_name(org_name: str) -> str:
    return org_name or f"Mailwarden {__version__}"


# --- versions for TAXII ---------------------------------------------------------------------------

def add_version(connection: Connection, obj: Mapping[str, Any], *, now: datetime,
                indicator_id: int | None = None) -> None:
    """Keep one version of an object (skipped when that version is already there)."""
    version = parse_stix_time(str(obj.get("modified") or obj.get("created") or stix_time(now)))
    exists = connection.execute(select(OBJECTS.c.id).where(OBJECTS.c.stix_id == obj["id"],
                                                           OBJECTS.c.version == version)).first()
    if exists is None:
        newer = connection.execute(select(OBJECTS.c.id).where(OBJECTS.c.stix_id == obj["id"],
                                                               OBJECTS.c.version > version).limit(1)).first()
        if newer is None:
            connection.execute(update(OBJECTS).where(OBJECTS.c.stix_id == obj["id"], OBJECTS.c.latest.is_(True))
                               .values(latest=False))
        connection.execute(insert(OBJECTS).values(stix_id=obj["id"], type=obj["type"], version=version,
                                                  date_added=millis(now), indicator_id=indicator_id,
                                                  latest=newer is None, object=dict(obj)))


def add_once(connection: Connection, obj: Mapping[str, Any], now: datetime) -> None:
    """Keep an object that never changes (identities, campaigns, relationships) unless it is there."""
    if connection.execute(select(OBJECTS.c.id).where(OBJECTS.c.stix_id == obj["id"]).limit(1)).first() is None:
        add_version(connection, obj, now=now)
