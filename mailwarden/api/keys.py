"""API keys: ``mwk_<id>_<secret>``, stored as the id, a random salt and SHA-256(salt + secret).

The secret is 256 random bits, so a salted fast hash is enough (nothing to brute-force); the comparison
is constant-time. Scopes:

    read:logs            the Rejection and Release Logs
    quarantine:read      list and preview held messages
    quarantine:release   release or delete held messages
    admin                everything, including the queue
    quarantine:own       list, preview and release one's own held messages (a key bound to a user's address)
    messages:read        search the archive, read archived messages, the removal log
    messages:delete      remove archived messages (one, or every one matching a query)
    dmarc:read           DMARC summaries, sources, senders, alerts and posture
    dmarc:write          upload DMARC reports
    intel:read           indicators, sightings, events, webhook deliveries, feeds and TAXII
    intel:write          create, update and revoke indicators, retro-hunts, webhook replay
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
from mailwarden.store.db import begin_write
from mailwarden.store.models import Base

API_KEYS: Table = Base.metadata.tables["api_keys"]
SCOPES = ("read:logs", "quarantine:read", "quarantine:release", "admin", "dmarc:read", "dmarc:write",
          "quarantine:own", "messages:read", "messages:delete", "intel:read", "intel:write")
PREFIX = "mwk"


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    scopes: frozenset[str]
    user: str | None = None  # the address a quarantine:own key acts for (lower case)

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode("ascii")).hexdigest()


def create_key(engine: Engine, *, name: str, scopes: Iterable[str], now: datetime, user: str | None = None) -> str:
    """Store a new key and return it (the only time the secret is seen); ``quarantine:own`` needs a ``user``."""
    wanted = sorted(set(scopes))
    unknown = [s for s in wanted if s not in SCOPES]
    if not wanted or unknown:
        raise ConfigError(f"scopes must be some of {', '.join(SCOPES)}" + (f"; unknown: {', '.join(unknown)}"
                                                                           if unknown else ""))
    user = (user or "").strip().lower() or None
    if "quarantine:own" in wanted and user is None:
        raise ConfigError("a quarantine:own key acts for one user: give the user's address (--user)")
    if user is not None and (user.count("@") != 1 or any(c.isspace() or ord(c) < 32 for c in user)):
        raise ConfigError(f"not an email address: {user!r}")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    with begin_write(engine) as connection:
        connection.execute(insert(API_KEYS).values(key_id=key_id, name=name, salt=salt, hash=_digest(salt, secret),
                                                   scopes=wanted, created_at=now, user_email=user))
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
    return ApiKey(row.key_id, row.name, frozenset(row.scopes), row.user_email)
