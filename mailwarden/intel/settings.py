"""``[intel]`` in org.toml: publishing thresholds, rate limits, webhooks, syslog receivers, pull sources.

    [intel]
    min_confidence = 50            # feeds list indicators whose current confidence is at least this
    block_learned = false          # indicators learned from verdicts block too (default: monitor only)
    rpz_zone = "rpz.mailwarden"    # the origin of /feeds/rpz.zone
    api_rate = 20                  # API and feed requests a second per key (token bucket) ...
    api_burst = 100                # ... and at most this many at once
    allowlist = ["example-cdn.net", "203.0.113.0/24"]     # more values never published nor blocked
    reload_interval = 2            # seconds: how often serve checks for changed block lists

    [[intel.webhooks]]
    name = "soar"
    url = "https://soar.example/hooks/mailwarden"   # http:// only on loopback
    secret_env = "SOAR_WEBHOOK_SECRET"              # the HMAC-SHA256 key, from the environment
    events = ["indicator.upserted", "threat.detected"]   # default: every event
    max_attempts = 8               # then the delivery is dead (the dead-letter list)

    [[intel.syslog]]
    name = "siem"
    address = "siem.example:6514"
    transport = "tls"              # tcp | tls
    format = "cef"                 # cef | json
    ca_file = "/etc/ssl/siem-ca.pem"

    [[intel.pull]]
    name = "isac"
    kind = "taxii"                 # taxii (a collection URL) | misp (a feed's base URL)
    url = "https://taxii.isac.example/api1/collections/91a7b528-80eb-42ed-a74d-c6fbd5a26116/"
    token_env = "ISAC_TOKEN"       # a bearer token; or user_env and password_env for basic auth
    interval = 3600
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailwarden.errors import ConfigError

EVENT_TYPES = ("message.scanned", "threat.detected", "indicator.upserted", "indicator.revoked", "lookalike.found",
               "retrohunt.completed")
_LOOPBACK = ("127.0.0.1", "localhost", "[::1]", "::1")
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class WebhookSettings:
    name: str
    url: str
    secret_env: str
    events: tuple[str, ...] = ()  # empty: every event
    max_attempts: int = 8
    retry_base: float = 30.0
    retry_max: float = 3600.0
    timeout: float = 10.0

    @property
    def sink(self) -> str:
        return f"webhook:{self.name}"

    def secret(self, environ: dict[str, str] | None = None) -> bytes:
        value = (os.environ if environ is None else environ).get(self.secret_env, "")
        if not value:
            raise ConfigError(f"webhook {self.name}: the secret variable {self.secret_env} is not set")
        return value.encode("utf-8")


@dataclass(frozen=True)
class SyslogSettings:
    name: str
    address: str  # host:port
    transport: str = "tcp"  # tcp | tls
    format: str = "cef"  # cef | json
    ca_file: str = ""
    server_name: str = ""  # the name in the receiver's certificate (default: the host)
    events: tuple[str, ...] = ()
    hostname: str = ""  # HOSTNAME in the syslog header (default: this machine's)
    timeout: float = 10.0

    @property
    def sink(self) -> str:
        return f"syslog:{self.name}"

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.address.rpartition(":")
        return host.strip("[]"), int(port)


@dataclass(frozen=True)
class PullSettings:
    name: str
    kind: str  # taxii | misp
    url: str
    token_env: str = ""
    user_env: str = ""
    password_env: str = ""
    interval: float = 3600.0
    confidence: int = 50  # when the source gives none
    action: str = "monitor"
    tags: tuple[str, ...] = ()
    timeout: float = 30.0
    max_objects: int = 100_000  # a run reads at most this many

    @property
    def source(self) -> str:
        return f"feed:{self.name}"


@dataclass(frozen=True)
class IntelSettings:
    min_confidence: int = 50
    block_learned: bool = False
    rpz_zone: str = "rpz.mailwarden"
    api_rate: float = 20.0
    api_burst: int = 100
    allowlist: tuple[str, ...] = ()
    reload_interval: float = 2.0
    publish_interval: float = 1.0
    webhooks: tuple[WebhookSettings, ...] = ()
    syslog: tuple[SyslogSettings, ...] = ()
    pull: tuple[PullSettings, ...] = field(default_factory=tuple)


def _check_url(url: str, where: str) -> str:
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0]
    host = host.split("]", 1)[0] + "]" if host.startswith("[") else host.rsplit(":", 1)[0]
    if not rest or not (scheme == "https" or (scheme == "http" and host in _LOOPBACK)):
        raise ConfigError(f"{where}: 'url' must be an https:// URL (http:// only on loopback)")
    return url


def _string(table: dict[str, Any], key: str, where: str, default: str = "") -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or any(ch in value for ch in "\r\n\0"):
        raise ConfigError(f"{where}: '{key}' must be a string on one line")
    return value.strip()


def _number(table: dict[str, Any], key: str, default: float, where: str, low: float, high: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigError(f"{where}: '{key}' must be a number from {low:g} to {high:g}")
    return float(value)


def _strings(table: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: '{key}' must be a list of strings")
    return tuple(v.strip() for v in value if v.strip())


def _name(table: dict[str, Any], where: str, seen: set[str]) -> str:
    name = _string(table, "name", where)
    if not _NAME.fullmatch(name) or name in seen:
        raise ConfigError(f"{where}: 'name' must be a unique name of letters, digits, '.', '_' or '-'")
    seen.add(name)
    return name


def _events(table: dict[str, Any], where: str) -> tuple[str, ...]:
    found = _strings(table, "events", where)
    unknown = [e for e in found if e not in EVENT_TYPES]
    if unknown:
        raise ConfigError(f"{where}: unknown event {unknown[0]!r}; events are {', '.join(EVENT_TYPES)}")
    return found


def _env(table: dict[str, Any], key: str, where: str) -> str:
    value = _string(table, key, where)
    if value and not _ENV.fullmatch(value):
        raise ConfigError(f"{where}: '{key}' must be an environment variable name")
    return value


def _tables(data: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(f"{where}: '{key}' must be an array of tables ([[intel.{key}]])")
    return value


def _known(table: dict[str, Any], keys: set[str], where: str) -> None:
    unknown = sorted(set(table) - keys)
    if unknown:
        raise ConfigError(f"{where}: unknown setting {unknown[0]!r}")


def intel_settings_from(data: object, source: str = "org.toml") -> IntelSettings:
    """Validate an ``[intel]`` table."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: [intel] must be a table")
    where = f"{source}: intel"
    _known(data, {"min_confidence", "block_learned", "rpz_zone", "api_rate", "api_burst", "allowlist",
                  "reload_interval", "publish_interval", "webhooks", "syslog", "pull"}, where)
    block_learned = data.get("block_learned", False)
    if not isinstance(block_learned, bool):
        raise ConfigError(f"{where}: 'block_learned' must be true or false")
    zone = _string(data, "rpz_zone", where, "rpz.mailwarden").strip(".").lower()
    if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)*", zone):
        raise ConfigError(f"{where}: 'rpz_zone' must be a domain name")
    names: set[str] = set()
    webhooks = []
    for i, table in enumerate(_tables(data, "webhooks", where)):
        here = f"{where}.webhooks[{i}]"
        _known(table, {"name", "url", "secret_env", "events", "max_attempts", "retry_base", "retry_max", "timeout"},
               here)
        secret_env = _env(table, "secret_env", here)
        if not secret_env:
            raise ConfigError(f"{here}: 'secret_env' is required (the variable holding the HMAC key)")
        webhooks.append(WebhookSettings(
            name=_name(table, here, names), url=_check_url(_string(table, "url", here), here), secret_env=secret_env,
            events=_events(table, here), max_attempts=int(_number(table, "max_attempts", 8, here, 1, 100)),
            retry_base=_number(table, "retry_base", 30.0, here, 0.01, 86_400),
            retry_max=_number(table, "retry_max", 3600.0, here, 0.01, 7 * 86_400),
            timeout=_number(table, "timeout", 10.0, here, 0.1, 300)))
    syslogs = []
    for i, table in enumerate(_tables(data, "syslog", where)):
        here = f"{where}.syslog[{i}]"
        _known(table, {"name", "address", "transport", "format", "ca_file", "server_name", "events", "hostname",
                       "timeout"}, here)
        address = _string(table, "address", here)
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"{here}: 'address' must be host:port")
        transport = _string(table, "transport", here, "tcp")
        payload = _string(table, "format", here, "cef")
        if transport not in ("tcp", "tls") or payload not in ("cef", "json"):
            raise ConfigError(f"{here}: 'transport' is tcp or tls and 'format' cef or json")
        syslogs.append(SyslogSettings(
            name=_name(table, here, names), address=address, transport=transport, format=payload,
            ca_file=_string(table, "ca_file", here), server_name=_string(table, "server_name", here),
            events=_events(table, here), hostname=_string(table, "hostname", here),
            timeout=_number(table, "timeout", 10.0, here, 0.1, 300)))
    pulls = []
    for i, table in enumerate(_tables(data, "pull", where)):
        here = f"{where}.pull[{i}]"
        _known(table, {"name", "kind", "url", "token_env", "user_env", "password_env", "interval", "confidence",
                       "action", "tags", "timeout", "max_objects"}, here)
        kind = _string(table, "kind", here)
        action = _string(table, "action", here, "monitor")
        if kind not in ("taxii", "misp") or action not in ("block", "monitor"):
            raise ConfigError(f"{here}: 'kind' is taxii or misp and 'action' block or monitor")
        pulls.append(PullSettings(
            name=_name(table, here, names), kind=kind, url=_check_url(_string(table, "url", here), here),
            token_env=_env(table, "token_env", here), user_env=_env(table, "user_env", here),
            password_env=_env(table, "password_env", here),
            interval=_number(table, "interval", 3600.0, here, 1, 30 * 86_400),
            confidence=int(_number(table, "confidence", 50, here, 0, 100)), action=action,
            tags=_strings(table, "tags", here), timeout=_number(table, "timeout", 30.0, here, 0.1, 600),
            max_objects=int(_number(table, "max_objects", 100_000, here, 1, 10_000_000))))
    return IntelSettings(
        min_confidence=int(_number(data, "min_confidence", 50, where, 0, 100)), block_learned=block_learned,
        rpz_zone=zone, api_rate=_number(data, "api_rate", 20.0, where, 0.01, 1_000_000),
        api_burst=int(_number(data, "api_burst", 100, where, 1, 1_000_000)),
        allowlist=tuple(v.lower() for v in _strings(data, "allowlist", where)),
        reload_interval=_number(data, "reload_interval", 2.0, where, 0.05, 3600),
        publish_interval=_number(data, "publish_interval", 1.0, where, 0.05, 3600),
        webhooks=tuple(webhooks), syslog=tuple(syslogs), pull=tuple(pulls))


def load_intel_settings(config: Path | None) -> IntelSettings:
    """``[intel]`` of an org.toml (the defaults when there is no file or no table)."""
    if config is None:
        return IntelSettings()
    try:
        document = tomllib.loads(Path(config).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {config}: {exc}") from exc
    return intel_settings_from(document.get("intel", {}), str(config))
