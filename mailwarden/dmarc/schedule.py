"""The posture check inside ``serve``: own and partner domains, every ``[dmarc] posture_interval``.

    schedule = PostureSchedule(engine, org, resolver)      # the gateway starts it
    await schedule.run(stopping)                           # until the gateway stops
    run = await check_and_record(engine, org, resolver)    # one check now (tests, the API)

A run checks every own and partner domain (``posture.check_domains``, in a thread: the checks use the
synchronous resolver seam) and stores what changed as events in the ``events`` outbox, where the sinks
(webhook, syslog) pick them up:

    dmarc.posture           a domain's posture when first checked and whenever it changes (its DMARC
                            strength, policy, partner flag or findings), with the changes; the latest
                            one per domain is what ``GET /api/v1/dmarc/posture`` answers with
    dmarc.partner_dmarc     a partner domain whose DMARC is weak or missing (first seen so, or in another
                            way than before), or whose DMARC changed at all (fixed too)
    dmarc.posture_checked   one per run: how many domains were checked, which changed, which are flagged
    dmarc.partner_notified  with ``[dmarc] notify_partners = true``: each contact told (see ``notice``)

A domain whose DMARC lookup failed (SERVFAIL, timeout) keeps its stored posture: a DNS hiccup is no
change, and DNS failures elsewhere in a check are left out of the comparison. A run is due
``posture_interval`` after the last ``dmarc.posture_checked`` event, so gateway nodes sharing a database
share the schedule: a node that wakes to find a recent run waits for the next one. The first run comes
``FIRST_RUN_DELAY`` after start-up (or one interval, if that is shorter), when it is due by then.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from mailwarden.config import OrgConfig
from mailwarden.dmarc.alerts import add_event, table
from mailwarden.dmarc.notice import PartnerNotice, notify_weak_partners
from mailwarden.dmarc.posture import DomainPosture, Role, check_domains
from mailwarden.resolver import Resolver
from mailwarden.store.db import begin_write, store_errors

log = logging.getLogger("mailwarden.dmarc")
POSTURE_EVENT = "dmarc.posture"
PARTNER_EVENT = "dmarc.partner_dmarc"
RUN_EVENT = "dmarc.posture_checked"
RETRY_AFTER_FAILURE = 300.0  # seconds before a run that failed (the database was down) is tried again
FIRST_RUN_DELAY = 60.0  # after start-up (or the interval, if shorter): the gateway takes mail first


def _utcnow() -> datetime:
    return datetime.now(UTC)


def roles_of(org: OrgConfig) -> dict[str, Role]:
    """Every own and partner domain, with its role (own wins when a domain is both)."""
    roles: dict[str, Role] = {}
    for partner in org.partners:
        for domain in partner.domains:
            roles[domain.lower().rstrip(".")] = "partner"
    for domain in org.domains:
        roles[domain.lower().rstrip(".")] = "own"
    return roles


def fingerprint(posture: DomainPosture) -> dict[str, Any]:
    """What a change is judged on (DNS failures left out)."""
    return {"role": posture.role, "strength": posture.dmarc.get("strength"), "policy": posture.dmarc.get("policy"),
            "partner_flag": posture.partner_flag,
            "findings": sorted([f.check, f.severity, f.problem] for f in posture.findings if f.check != "dns")}


def digest_of(state: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode("utf-8")).hexdigest()


def changes_between(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    if old is None:
        return ["first check"]
    said = [f"{key}: {old.get(key) or 'none'} -> {new.get(key) or 'none'}"
            for key in ("role", "strength", "policy", "partner_flag") if old.get(key) != new.get(key)]
    before = {tuple(f) for f in old.get("findings", [])}
    after = {tuple(f) for f in new["findings"]}
    said += [f"new {severity} {check} finding: {problem}" for check, severity, problem in sorted(after - before)]
    said += [f"resolved {severity} {check} finding: {problem}" for check, severity, problem in sorted(before - after)]
    return said


def latest_postures(engine: Engine, domains: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    """The last stored ``dmarc.posture`` payload of each domain (``checked_at`` added), by domain."""
    wanted = {d.lower().rstrip(".") for d in domains} if domains is not None else None
    events = table("events")
    query = (select(events.c.created_at, events.c.payload).where(events.c.type == POSTURE_EVENT)
             .order_by(events.c.id.desc()))
    found: dict[str, dict[str, Any]] = {}
    with store_errors("read DMARC posture from", engine.url), engine.connect() as connection:
        for created_at, payload in connection.execute(query):
            domain = payload.get("domain")
            if domain in found or (wanted is not None and domain not in wanted):
                continue
            found[domain] = {**payload, "checked_at": created_at.isoformat()}
            if wanted is not None and len(found) == len(wanted):
                break
    return found


def last_run(engine: Engine) -> datetime | None:
    events = table("events")
    query = select(events.c.created_at).where(events.c.type == RUN_EVENT).order_by(events.c.id.desc()).limit(1)
    with store_errors("read DMARC posture runs from", engine.url), engine.connect() as connection:
        found: datetime | None = connection.scalar(query)
        return found


@dataclass
class PostureRun:
    """What one run checked, stored and told."""

    checked: list[DomainPosture] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # DMARC lookup failed: the stored posture stays
    notices: list[PartnerNotice] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"checked": len(self.checked), "changed": self.changed, "flagged": self.flagged,
                "unknown": self.unknown, "notices": [n.to_dict() for n in self.notices]}


def record_run(engine: Engine, org: OrgConfig, postures: list[DomainPosture], now: datetime) -> PostureRun:
    """Store the postures that changed and the events they raise, in one transaction."""
    run = PostureRun(checked=postures)
    stored = latest_postures(engine, [p.domain for p in postures])
    with store_errors("store DMARC posture in", engine.url), begin_write(engine) as connection:
        for posture in postures:
            if posture.dmarc.get("strength") in (None, "unknown"):
                run.unknown.append(posture.domain)
                continue
            if posture.partner_flag:
                run.flagged.append(posture.domain)
            state = fingerprint(posture)
            digest = digest_of(state)
            previous = stored.get(posture.domain)
            if previous is not None and previous.get("digest") == digest:
                continue
            old_state = previous.get("state") if previous is not None else None
            run.changed.append(posture.domain)
            add_event(connection, POSTURE_EVENT, {
                "domain": posture.domain, "role": posture.role, "digest": digest, "state": state,
                "changes": changes_between(old_state, state), "posture": posture.to_dict()}, now)
            if posture.role != "partner":
                continue
            old_flag = old_state.get("partner_flag") if old_state else None
            old_strength = old_state.get("strength") if old_state else None
            strength = state["strength"]
            if (posture.partner_flag and (old_state is None or (old_flag, old_strength)
                                          != (posture.partner_flag, strength))) \
                    or (old_state is not None and old_strength != strength):
                owner = org.partner_for_domain(posture.domain)
                add_event(connection, PARTNER_EVENT, {
                    "domain": posture.domain, "partner": owner.name if owner else "", "flag": posture.partner_flag,
                    "strength": strength, "previous_flag": old_flag, "previous_strength": old_strength,
                    "dmarc": posture.dmarc,
                    "findings": [f.to_dict() for f in posture.findings if f.check in ("dmarc", "partner")]}, now)
        add_event(connection, RUN_EVENT, {"checked": len(postures), "changed": run.changed, "flagged": run.flagged,
                                          "unknown": run.unknown}, now)
    return run


async def check_and_record(engine: Engine, org: OrgConfig, resolver: Resolver, *,
                           now: Callable[[], datetime] = _utcnow, relay: str | None = None) -> PostureRun:
    """Check every own and partner domain now, store what changed, tell partners if so configured."""
    roles = roles_of(org)
    postures = await asyncio.to_thread(check_domains, resolver, list(roles), roles, org.dmarc.posture)
    run = await asyncio.to_thread(record_run, engine, org, postures, now())
    if org.dmarc.serve.notify_partners:
        run.notices = await notify_weak_partners(engine, org, postures, relay=relay, now=now)
    return run


class PostureSchedule:
    """Runs ``check_and_record`` every ``[dmarc] posture_interval`` until told to stop."""

    def __init__(self, engine: Engine, org: OrgConfig, resolver: Resolver, *,
                 now: Callable[[], datetime] = _utcnow, relay: str | None = None) -> None:
        self.engine = engine
        self.org = org
        self.resolver = resolver
        self.now = now
        self.relay = relay
        self.interval = org.dmarc.serve.posture_interval
        self.runs = 0
        self.last: PostureRun | None = None

    def seconds_until_due(self) -> float:
        previous = last_run(self.engine)
        if previous is None:
            return 0.0
        return max(0.0, self.interval - (self.now() - previous).total_seconds())

    async def run(self, stopping: asyncio.Event) -> None:
        if not roles_of(self.org):
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=min(FIRST_RUN_DELAY, self.interval))
        while not stopping.is_set():
            try:
                wait = await asyncio.to_thread(self.seconds_until_due)
            except Exception:
                log.exception("DMARC posture schedule: cannot read the last run")
                wait = RETRY_AFTER_FAILURE
            if wait <= 0:
                try:
                    self.last = await check_and_record(self.engine, self.org, self.resolver, now=self.now,
                                                       relay=self.relay)
                    self.runs += 1
                    log.info("DMARC posture: %s", json.dumps(self.last.to_dict()))
                    wait = self.interval
                except Exception:
                    log.exception("DMARC posture check failed; trying again in %.0f s", RETRY_AFTER_FAILURE)
                    wait = min(self.interval, RETRY_AFTER_FAILURE)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=wait)
