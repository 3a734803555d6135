"""The DNS seam: every DNS question Mailwarden asks goes through a ``Resolver``.

Scanning never touches the network except through this seam. ``StaticResolver`` answers from a table
(analyzer unit tests, offline scans); the live dnspython resolver plugs in behind the same protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class DnsAnswer:
    """Answers to one question; ``status`` is NOERROR, NXDOMAIN, SERVFAIL or TIMEOUT."""

    status: str
    records: tuple[str, ...] = ()

    @property
    def exists(self) -> bool:
        return self.status == "NOERROR"


class Resolver(Protocol):
    def query(self, name: str, rdtype: str) -> DnsAnswer: ...


@dataclass
class StaticResolver:
    """Answers from a fixed table keyed by (name, rdtype); anything else is NXDOMAIN."""

    records: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    queries: int = 0

    def query(self, name: str, rdtype: str) -> DnsAnswer:
        self.queries += 1
        found = self.records.get((name.lower().rstrip("."), rdtype.upper()))
        if found is None:
            return DnsAnswer("NXDOMAIN")
        return DnsAnswer("NOERROR", tuple(found))
