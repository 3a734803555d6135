"""Organisation config (org.toml) and process settings from the environment.

org.toml is a contract (see DESIGN.md): ``[organization]``, ``[[partners]]``, ``[[people]]``.
An optional ``[scoring]`` table overrides weights, thresholds and analyzer switches.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class OrgConfig:
    name: str = ""
    domains: tuple[str, ...] = ()
    authserv_id: str | None = None
    partners: tuple[Partner, ...] = ()
    people: tuple[Person, ...] = ()
    scoring: dict[str, Any] = field(default_factory=dict)

    def is_own_domain(self, domain: str) -> bool:
        domain = domain.lower().rstrip(".")
        return any(domain == d or domain.endswith("." + d) for d in self.domains)

    def partner_for_domain(self, domain: str) -> Partner | None:
        domain = domain.lower().rstrip(".")
        for partner in self.partners:
            if any(domain == d or domain.endswith("." + d) for d in partner.domains):
                return partner
        return None


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
