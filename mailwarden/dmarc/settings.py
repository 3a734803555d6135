"""DMARC settings: the defaults in ``mailwarden/data/dmarc.toml``, overridden by ``[dmarc]`` in org.toml.

    [dmarc]
    dkim_selectors = ["mycorp2024"]                       # tried besides the common ones
    report_addresses = ["dmarc-reports@acme.example"]     # the gateway ingests their mail instead of relaying it
    posture_interval = "24h"                              # ``serve`` checks own and partner domains this often
    notify_partners = false                               # tell a partner's contacts when its DMARC is weak
    [dmarc.alerts]
    jump_factor = 4.0

``load_org`` reads the section into ``OrgConfig.dmarc`` (``settings_from_table``); commands that take only
a config path read it with ``load_settings``. Report addresses must be in the organisation's own domains:
the gateway accepts mail for nothing else.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from functools import cache
from pathlib import Path
from typing import Any

from mailwarden.errors import ConfigError

DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "dmarc.toml"


@dataclass(frozen=True)
class AlertSettings:
    baseline_reports: int = 1
    max_source_alerts: int = 50
    forwarding_reasons: tuple[str, ...] = ("forwarded", "mailing_list", "trusted_forwarder")
    jump_factor: float = 3.0
    jump_minimum: int = 50
    baseline_days: int = 14
    baseline_min_reports: int = 3
    confidence_aggregate: int = 60
    confidence_failure: int = 80


@dataclass(frozen=True)
class PostureSettings:
    dkim_selectors: tuple[str, ...] = ()
    spf_lookup_warning: int = 8
    dkim_min_bits: int = 2048


@dataclass(frozen=True)
class ServeSettings:
    """What ``serve`` does with DMARC: the report mailboxes it ingests, the scheduled posture check."""

    report_addresses: tuple[str, ...] = ()
    posture_interval: float = 86_400.0  # seconds
    notify_partners: bool = False


@dataclass(frozen=True)
class DmarcSettings:
    alerts: AlertSettings = AlertSettings()
    posture: PostureSettings = PostureSettings()
    serve: ServeSettings = ServeSettings()


def _apply(base: Any, table: object, where: str) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    known = {f.name: f for f in fields(base)}
    changes: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown setting '{key}'")
        current = getattr(base, key)
        if isinstance(current, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: '{key}' must be true or false")
            changes[key] = value
        elif isinstance(current, tuple):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}: '{key}' must be a list of strings")
            changes[key] = tuple(v.strip().lower() for v in value if v.strip())
        elif not isinstance(value, int | float) or isinstance(value, bool) \
                or value < 0 or (isinstance(current, int) and not isinstance(value, int)):
            raise ConfigError(f"{where}: '{key}' must be a non-negative {type(current).__name__}")
        else:
            changes[key] = value
    return replace(base, **changes)


@cache
def default_settings() -> DmarcSettings:
    data = tomllib.loads(DATA_FILE.read_text(encoding="utf-8"))
    return DmarcSettings(_apply(AlertSettings(), data.get("alerts", {}), "dmarc.toml [alerts]"),
                         _apply(PostureSettings(), data.get("posture", {}), "dmarc.toml [posture]"))


_SERVE_KEYS = ("report_addresses", "posture_interval", "notify_partners")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
MIN_POSTURE_INTERVAL = 1.0


def _interval(value: object, where: str) -> float:
    """Seconds, from a number of seconds or a string such as ``90s``, ``30m``, ``24h``, ``7d``."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text[:-1].replace(".", "", 1).isdigit() and text[-1:] in _UNITS:
            value = float(text[:-1]) * _UNITS[text[-1]]
    if isinstance(value, bool) or not isinstance(value, int | float) or value < MIN_POSTURE_INTERVAL:
        raise ConfigError(f"{where}: 'posture_interval' must be at least {MIN_POSTURE_INTERVAL:g} second, as "
                          f"seconds or a string such as \"30m\", \"24h\" or \"7d\"")
    return float(value)


def _report_addresses(value: object, where: str, own_domains: tuple[str, ...] | None) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: 'report_addresses' must be a list of addresses")
    addresses = tuple(dict.fromkeys(v.strip().lower() for v in value if v.strip()))
    for address in addresses:
        local, at, domain = address.rpartition("@")
        if not at or not local or not domain or any(c.isspace() or c in "<>\"" for c in address):
            raise ConfigError(f"{where}: report address {address!r} is not an address (name@domain)")
        labels = domain.rstrip(".").split(".")
        if own_domains is not None and not any(".".join(labels[i:]) in own_domains for i in range(len(labels))):
            raise ConfigError(f"{where}: report address {address!r} is not in the organisation's domains "
                              f"({', '.join(own_domains) or 'none configured'}), so the gateway would refuse its mail")
    return addresses


def settings_from_table(table: object, where: str = "[dmarc]",
                        own_domains: tuple[str, ...] | None = None) -> DmarcSettings:
    """The defaults with a ``[dmarc]`` table applied (extra selectors add to the common ones).

    ``own_domains``: when given, every report address must be in one of them (or a subdomain)."""
    settings = default_settings()
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    alerts = _apply(settings.alerts, table.get("alerts", {}),
                    f"{where[:-1]}.alerts]" if where.endswith("]") else f"{where}.alerts")
    serve = ServeSettings(
        report_addresses=_report_addresses(table.get("report_addresses", []), where, own_domains),
        posture_interval=_interval(table.get("posture_interval", ServeSettings.posture_interval), where),
        notify_partners=_apply(ServeSettings(), {"notify_partners": table.get("notify_partners", False)},
                               where).notify_partners)
    extra = {k: v for k, v in table.items() if k != "alerts" and k not in _SERVE_KEYS}
    posture = _apply(settings.posture, extra, where)
    if "dkim_selectors" in extra:
        posture = replace(posture, dkim_selectors=tuple(dict.fromkeys(
            (*settings.posture.dkim_selectors, *posture.dkim_selectors))))
    return DmarcSettings(alerts, posture, serve)


def load_settings(config: Path | None) -> DmarcSettings:
    """The defaults, with ``[dmarc]`` of this org.toml applied."""
    if config is None:
        return default_settings()
    try:
        document = tomllib.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {config}: {exc}") from exc
    table = document.get("dmarc", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{config}: [dmarc] must be a table")
    return settings_from_table(table, f"{config}: [dmarc]")
