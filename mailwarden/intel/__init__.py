"""Threat-intel sharing: what the pipeline consults, and the indicator store behind it.

The scan reads the in-memory ``IntelLists`` only: no I/O on the hot path. Everything else lives in the
modules of this package, each one concern:

    indicators   types, normalised values, confidence decay, STIX patterns (pure)
    allowlist    what is never published nor blocked: own and partner domains, big public services
    models       the tables (migration 0007)
    store        create, update, revoke, search, sightings, the audit log; ``load_lists`` for the scan
    learn        indicators from verdicts (the gateway) and from the lookalike watch
    stix         STIX 2.1 objects built with ``stix2``; every change is kept as a version for TAXII
    taxii        the TAXII 2.1 server (``/taxii2/``)
    feeds        EDL lists, the RPZ zone, the MISP feed and CSV (``/feeds/``)
    hunt         the retro-hunt over kept mail, with remediation
    outbox       sink cursors and the webhook delivery table over the ``events`` outbox
    webhooks     signed webhook deliveries with retries and a dead-letter list
    syslog       RFC 5424 over TCP and TLS, CEF and JSON payloads
    pull         indicators from other TAXII servers and MISP feeds
    settings     ``[intel]`` in org.toml
    service      what ``serve`` runs: list reloads, sinks, pulls
    web          the HTTP pieces: routers, feed and TAXII authentication, rate limits
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class IntelLists:
    """Known-bad and known-good values the ``intel`` analyzer checks (loaded from the indicator store).

    ``version`` is the store's list version they were loaded at and ``expires_at`` the earliest time one of
    them runs out; the gateway reloads when either says the lists are stale."""

    blocked_domains: set[str] = field(default_factory=set)
    blocked_urls: set[str] = field(default_factory=set)
    blocked_ips: set[str] = field(default_factory=set)
    blocked_hashes: set[str] = field(default_factory=set)
    blocked_senders: set[str] = field(default_factory=set)
    allowed_domains: set[str] = field(default_factory=set)
    version: int = 0
    expires_at: datetime | None = None

    @property
    def size(self) -> int:
        return (len(self.blocked_domains) + len(self.blocked_urls) + len(self.blocked_ips) + len(self.blocked_hashes)
                + len(self.blocked_senders))
