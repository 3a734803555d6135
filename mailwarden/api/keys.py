"""API keys: ``mwk_<id>_<secret>``, stored as the id, a random salt and SHA-256(salt + secret).

The secret is 256 random bits, so a salted fast hash is enough (nothing to brute-force); the comparison
is constant-time. Scopes:

    read:logs            the Rejection and Release Logs
    quarantine:read      list and preview held messages
    quarantine:release   release or delete held messages
    admin                everything, including the queue
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, Table, insert, select

from mailwarden.errors import ConfigError
from mailwarden.store.models import Base

API_KEYS: Table = Base.metadata.tables["api_keys"]
SCOPES = ("read:logs", "quarantine:read", "quarantine:release", "admin")
PREFIX = "mwk"


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode("ascii")).hexdigest()


def create_key(engine: Engine, *, name: str, scopes: Iterable[str], now: datetime) -> str:
    """Store a new key and return it (the only time the secret is seen)."""
    wanted = sorted(set(scopes))
    unknown = [s for s in wanted if s not in SCOPES]
    if not wanted or unknown:
        raise ConfigError(f"scopes must be some of {', '.join(SCOPES)}" + (f"; unknown: {', '.join(unknown)}"
                                                                           if unknown else ""))
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    with engine.begin() as connection:
        connection.execute(insert(API_KEYS).values(key_id=key_id, name=name, salt=salt, hash=_digest(salt, secret),
                                                   scopes=wanted, created_at=now))
    return f"{PREFIX}_{key_id}_{secret}"


def verify_key(engine: Engine, token: str) -> ApiKey | None:
    """The key a bearer token stands for, or None (unknown, wrong secret, revoked)."""
    prefix, _, rest = token.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != PREFIX or not key_id or not secret or not secret.isascii():
        return None
    with engine.connect() as connection:
        row = connection.execute(select(API_KEYS).where(API_KEYS.c.key_id == key_id)).first()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(_digest(row.salt, secret), row.hash):
        return None
    return ApiKey(row.key_id, row.name, frozenset(row.scopes))
