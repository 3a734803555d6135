"""Organisation config (org.toml) and process settings from the environment.

org.toml is a contract (see DESIGN.md): ``[organization]``, ``[[partners]]``, ``[[people]]``.
An optional ``[scoring]`` table overrides weights, thresholds and analyzer switches.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from mailwarden.dmarc.settings import DmarcSettings
from mailwarden.dmarc.settings import default_settings as default_dmarc_settings
from mailwarden.dmarc.settings import settings_from_table as dmarc_settings_from
from mailwarden.errors import ConfigError

DEFAULT_DATA_DIR = "./mailwarden-data"


@dataclass(frozen=True)
class Partner:
    name: str
    domains: tuple[str, ...]
    contacts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Person:
    email: str
    name: str
    title: str = ""
    vip: bool = False


DNSBL_KINDS = ("ip", "domain")
DNSBL_TARGETS = ("sender", "links")


@dataclass(frozen=True)
class DnsSettings:
    """``[dns]``: the resolvers every command asks (``host:port``), per-query timeout, concurrency, cache size.

    ``MAILWARDEN_RESOLVER=host:port[,host:port]`` overrides ``resolvers``. No resolver configured means
    no DNS at all for offline scans (the static, empty resolver).
    """

    resolvers: tuple[str, ...] = ()
    timeout: float = 2.0
    max_concurrency: int = 64
    cache_size: int = 100_000


@dataclass(frozen=True)
class DnsblZone:
    """One ``[[auth.dnsbl]]`` zone: an IP blocklist (client IP) or a domain blocklist (sender, link domains).

    ``codes`` maps answer addresses to what they mean; when given, only those answers count as a listing.
    """

    zone: str
    kind: str = "ip"
    targets: tuple[str, ...] = DNSBL_TARGETS
    codes: tuple[tuple[str, str], ...] = ()
    factor: float = 1.0


@dataclass(frozen=True)
class AuthSettings:
    """``[auth]``: ARC sealers trusted to vouch for forwarded mail, DNSBL zones, and enforcement switches."""

    trusted_arc_sealers: tuple[str, ...] = ()
    dnsbl: tuple[DnsblZone, ...] = ()
    enforce_dmarc: bool = True
    max_link_domains: int = 10


@dataclass(frozen=True)
class OrgConfig:
    name: str = ""
    domains: tuple[str, ...] = ()
    authserv_id: str | None = None
    partners: tuple[Partner, ...] = ()
    people: tuple[Person, ...] = ()
    scoring: dict[str, Any] = field(default_factory=dict)
    dns: DnsSettings = field(default_factory=DnsSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    notify: NotifySettings = field(default_factory=lambda: NotifySettings())
    watch: WatchSettings = field(default_factory=lambda: WatchSettings())
    dmarc: DmarcSettings = field(default_factory=default_dmarc_settings)  # [dmarc], mailwarden.dmarc.settings

    def is_own_domain(self, domain: str) -> bool:
        return any(d in self._own_domains for d in _self_and_parents(domain))

    def partner_for_domain(self, domain: str) -> Partner | None:
        """The partner owning this domain or a parent of it (a dictionary walk, not a scan of partners)."""
        for candidate in _self_and_parents(domain):
            partner = self._partner_by_domain.get(candidate)
            if partner is not None:
                return partner
        return None

    @cached_property
    def _own_domains(self) -> frozenset[str]:
        return frozenset(self.domains)

    @cached_property
    def _partner_by_domain(self) -> dict[str, Partner]:
        index: dict[str, Partner] = {}
        for partner in self.partners:
            for domain in partner.domains:
                index.setdefault(domain, partner)
        return index


def _self_and_parents(domain: str) -> list[str]:
    """"a.b.example.com" -> ["a.b.example.com", "b.example.com", "example.com", "com"]."""
    labels = domain.lower().rstrip(".").split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


def _str_list(table: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: '{key}' must be a list of strings")
    return tuple(v.strip().lower() for v in value)


def _required_str(table: dict[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: '{key}' is required and must be a non-empty string")
    return value.strip()


def org_from_dict(data: dict[str, Any], source: str = "org.toml") -> OrgConfig:
    """Validate a parsed org.toml document and build the typed config."""
    org = data.get("organization", {})
    if not isinstance(org, dict):
        raise ConfigError(f"{source}: [organization] must be a table")
    partners = []
    for i, p in enumerate(data.get("partners", [])):
        where = f"{source}: partners[{i}]"
        if not isinstance(p, dict):
            raise ConfigError(f"{where} must be a table")
        partners.append(
            Partner(
                name=_required_str(p, "name", where),
                domains=_str_list(p, "domains", where),
                contacts=_str_list(p, "contacts", where),
            )
        )
    people = []
    for i, p in enumerate(data.get("people", [])):
        where = f"{source}: people[{i}]"
        if not isinstance(p, dict):
            raise ConfigError(f"{where} must be a table")
        people.append(
            Person(
                email=_required_str(p, "email", where).lower(),
                name=_required_str(p, "name", where),
                title=str(p.get("title", "")),
                vip=bool(p.get("vip", False)),
            )
        )
    authserv_id = org.get("authserv_id")
    if authserv_id is not None and not isinstance(authserv_id, str):
        raise ConfigError(f"{source}: organization.authserv_id must be a string")
    scoring = data.get("scoring", {})
    if not isinstance(scoring, dict):
        raise ConfigError(f"{source}: [scoring] must be a table")
    return OrgConfig(
        name=str(org.get("name", "")),
        domains=_str_list(org, "domains", f"{source}: organization"),
        authserv_id=authserv_id.strip().lower() if authserv_id else None,
        partners=tuple(partners),
        people=tuple(people),
        scoring=scoring,
        dns=dns_settings_from(data.get("dns", {}), source),
        auth=auth_settings_from(data.get("auth", {}), source),
        notify=notify_settings_from(data.get("notify", {}), source),
        watch=watch_settings_from(data.get("watch", {}), source),
        dmarc=dmarc_settings_from(data.get("dmarc", {}), f"{source}: [dmarc]",
                                  own_domains=_str_list(org, "domains", f"{source}: organization")),
    )


def _number(table: dict[str, Any], key: str, default: float, where: str, low: float, high: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigError(f"{where}: '{key}' must be a number from {low:g} to {high:g}")
    return float(value)


def dns_settings_from(table: object, source: str = "org.toml") -> DnsSettings:
    """Validate a ``[dns]`` table."""
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [dns] must be a table")
    where = f"{source}: dns"
    resolvers = table.get("resolvers", [])
    if isinstance(resolvers, str):
        resolvers = [r for r in resolvers.split(",") if r.strip()]
    if not isinstance(resolvers, list) or not all(isinstance(r, str) and r.strip() for r in resolvers):
        raise ConfigError(f"{where}: 'resolvers' must be a list of 'host:port' strings")
    return DnsSettings(
        resolvers=tuple(r.strip() for r in resolvers),
        timeout=_number(table, "timeout", 2.0, where, 0.05, 60),
        max_concurrency=int(_number(table, "max_concurrency", 64, where, 1, 10_000)),
        cache_size=int(_number(table, "cache_size", 100_000, where, 0, 10_000_000)),
    )


def _dnsbl_zone(entry: object, where: str) -> DnsblZone:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a table")
    zone = _required_str(entry, "zone", where).lower().strip(".")
    kind = entry.get("kind", "ip")
    if kind not in DNSBL_KINDS:
        raise ConfigError(f"{where}: 'kind' must be one of {', '.join(DNSBL_KINDS)}")
    targets = _str_list(entry, "targets", where) if "targets" in entry else DNSBL_TARGETS
    if any(t not in DNSBL_TARGETS for t in targets):
        raise ConfigError(f"{where}: 'targets' may hold {', '.join(DNSBL_TARGETS)}")
    codes = entry.get("codes", {})
    if not isinstance(codes, dict) or not all(isinstance(v, str) for v in codes.values()):
        raise ConfigError(f"{where}: 'codes' must be a table of answer address = meaning")
    return DnsblZone(zone=zone, kind=kind, targets=targets, codes=tuple((k.strip(), v) for k, v in codes.items()),
                     factor=_number(entry, "factor", 1.0, where, 0, 10))


def auth_settings_from(table: object, source: str = "org.toml") -> AuthSettings:
    """Validate an ``[auth]`` table (with its ``[[auth.dnsbl]]`` zones)."""
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [auth] must be a table")
    where = f"{source}: auth"
    zones = table.get("dnsbl", [])
    if not isinstance(zones, list):
        raise ConfigError(f"{where}: 'dnsbl' must be an array of tables ([[auth.dnsbl]])")
    enforce = table.get("enforce_dmarc", True)
    if not isinstance(enforce, bool):
        raise ConfigError(f"{where}: 'enforce_dmarc' must be true or false")
    return AuthSettings(
        trusted_arc_sealers=tuple(s.strip(".") for s in _str_list(table, "trusted_arc_sealers", where)),
        dnsbl=tuple(_dnsbl_zone(z, f"{where}.dnsbl[{i}]") for i, z in enumerate(zones)),
        enforce_dmarc=enforce,
        max_link_domains=int(_number(table, "max_link_domains", 10, where, 0, 100)),
    )


@dataclass(frozen=True)
class NotifySettings:
    """``[notify]``: how partner contacts hear that a lookalike of the organisation's own domain is about.

    ``relay`` (``host:port``; else ``MAILWARDEN_RELAY``) is the SMTP server the mail goes through and ``from_``
    (``from`` in the file) its sender. ``webhook`` is also told (``https://``, or ``http://`` on loopback),
    each request signed with HMAC-SHA256 under the secret in the environment variable ``webhook_secret_env``.
    """

    relay: str = ""
    from_: str = ""
    webhook: str = ""
    webhook_secret_env: str = ""
    timeout: float = 30.0


@dataclass(frozen=True)
class WatchSettings:
    """``[watch]``: the lookalike watch. Empty ``suffixes`` and ``words`` mean the data file's lists; ``rate``
    is DNS queries per second, ``max_queries`` per run, ``interval`` seconds between runs inside ``serve``."""

    suffixes: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    rate: float = 20.0
    max_queries: int = 20_000
    concurrency: int = 32
    interval: float = 86_400.0


_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _host_port(value: str, where: str) -> str:
    host, _, port = value.strip().rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{where}: expected host:port with a port from 1 to 65535, got {value!r}")
    return value.strip()


def _optional_str(table: dict[str, Any], key: str, where: str) -> str:
    value = table.get(key, "")
    if not isinstance(value, str) or any(ch in value for ch in "\r\n\0"):
        raise ConfigError(f"{where}: '{key}' must be a string on one line")
    return value.strip()


def notify_settings_from(table: object, source: str = "org.toml") -> NotifySettings:
    """Validate a ``[notify]`` table."""
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [notify] must be a table")
    where = f"{source}: notify"
    unknown = set(table) - {"relay", "from", "webhook", "webhook_secret_env", "timeout"}
    if unknown:
        raise ConfigError(f"{where}: unknown setting {sorted(unknown)[0]!r}")
    relay = _optional_str(table, "relay", where)
    sender = _optional_str(table, "from", where)
    if sender and (sender.count("@") != 1 or " " in sender or sender.startswith("@") or sender.endswith("@")):
        raise ConfigError(f"{where}: 'from' must be one address (name@domain)")
    webhook = _optional_str(table, "webhook", where)
    secret_env = _optional_str(table, "webhook_secret_env", where)
    if webhook:
        scheme, _, rest = webhook.partition("://")
        host = rest.split("/", 1)[0].rsplit(":", 1)[0] if not rest.startswith("[") else rest.split("]", 1)[0] + "]"
        if not rest or not (scheme == "https" or (scheme == "http" and host in _LOOPBACK_HOSTS)):
            raise ConfigError(f"{where}: 'webhook' must be an https:// URL (http:// only on loopback)")
        if not secret_env:
            raise ConfigError(f"{where}: 'webhook' needs 'webhook_secret_env', the variable holding its secret")
    if secret_env and not _ENV_NAME.fullmatch(secret_env):
        raise ConfigError(f"{where}: 'webhook_secret_env' must be an environment variable name")
    return NotifySettings(relay=_host_port(relay, f"{where}.relay") if relay else "", from_=sender, webhook=webhook,
                          webhook_secret_env=secret_env, timeout=_number(table, "timeout", 30.0, where, 0.1, 600))


def watch_settings_from(table: object, source: str = "org.toml") -> WatchSettings:
    """Validate a ``[watch]`` table."""
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [watch] must be a table")
    where = f"{source}: watch"
    unknown = set(table) - {"suffixes", "words", "rate", "max_queries", "concurrency", "interval"}
    if unknown:
        raise ConfigError(f"{where}: unknown setting {sorted(unknown)[0]!r}")
    suffixes = tuple(s.strip(".") for s in _str_list(table, "suffixes", where))
    words = _str_list(table, "words", where)
    if any(not s or " " in s for s in suffixes) or any(not w.isalnum() for w in words):
        raise ConfigError(f"{where}: 'suffixes' must be domain suffixes and 'words' single words")
    return WatchSettings(
        suffixes=suffixes, words=words,
        rate=_number(table, "rate", 20.0, where, 0.1, 10_000),
        max_queries=int(_number(table, "max_queries", 20_000, where, 1, 10_000_000)),
        concurrency=int(_number(table, "concurrency", 32, where, 1, 1_000)),
        interval=_number(table, "interval", 86_400.0, where, 60, 30 * 86_400),
    )


def load_org(path: str | Path) -> OrgConfig:
    """Read and validate an org.toml file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML in {path}: {exc}") from exc
    return org_from_dict(data, str(path))


@dataclass(frozen=True)
class Settings:
    """Process settings: where state lives."""

    data_dir: Path
    database_url: str

    @classmethod
    def from_env(cls, data_dir: str | Path | None = None) -> Settings:
        directory = Path(data_dir or os.environ.get("MAILWARDEN_DATA_DIR") or DEFAULT_DATA_DIR)
        url = os.environ.get("MAILWARDEN_DATABASE_URL") or f"sqlite:///{directory.resolve() / 'mailwarden.db'}"
        return cls(data_dir=directory, database_url=url)
