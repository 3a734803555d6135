"""Known-bad and known-good indicators the pipeline consults (loaded from the indicator store).

The scan reads these in-memory sets only: no I/O on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class IntelLists:
    blocked_domains: set[str] = field(default_factory=set)
    blocked_urls: set[str] = field(default_factory=set)
    blocked_ips: set[str] = field(default_factory=set)
    blocked_hashes: set[str] = field(default_factory=set)
    blocked_senders: set[str] = field(default_factory=set)
    allowed_domains: set[str] = field(default_factory=set)
