"""DMARC settings: the defaults in ``mailwarden/data/dmarc.toml``, overridden by ``[dmarc]`` in org.toml.

    [dmarc]
    dkim_selectors = ["mycorp2024"]        # tried besides the common ones
    [dmarc.alerts]
    jump_factor = 4.0

org.toml's other sections are read by ``mailwarden.config``; this one is read here, from the same file.
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
class DmarcSettings:
    alerts: AlertSettings = AlertSettings()
    posture: PostureSettings = PostureSettings()


def _apply(base: Any, table: object, where: str) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    known = {f.name: f for f in fields(base)}
    changes: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown setting '{key}'")
        current = getattr(base, key)
        if isinstance(current, tuple):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}: '{key}' must be a list of strings")
            changes[key] = tuple(v.strip().lower() for v in value if v.strip())
        elif isinstance(current, bool) or not isinstance(value, int | float) or isinstance(value, bool) \
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


def load_settings(config: Path | None) -> DmarcSettings:
    """The defaults, with ``[dmarc]`` of this org.toml applied (extra selectors add to the common ones)."""
    settings = default_settings()
    if config is None:
        return settings
    try:
        document = tomllib.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {config}: {exc}") from exc
    table = document.get("dmarc", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{config}: [dmarc] must be a table")
    alerts = _apply(settings.alerts, table.get("alerts", {}), f"{config}: [dmarc.alerts]")
    extra = {k: v for k, v in table.items() if k != "alerts"}
    posture = _apply(settings.posture, extra, f"{config}: [dmarc]")
    if "dkim_selectors" in extra:
        posture = replace(posture, dkim_selectors=tuple(dict.fromkeys(
            (*settings.posture.dkim_selectors, *posture.dkim_selectors))))
    return DmarcSettings(alerts, posture)
