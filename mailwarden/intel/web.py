"""The HTTP pieces of threat-intel sharing: who may call (scoped keys, bearer or basic), how often, the routers.

    install(app)      adds /api/v1/indicators, /api/v1/events, /api/v1/webhooks, /api/v1/intel/audit,
                      /taxii2/ and /feeds/ to the API app (``mailwarden.api.app.create_app`` calls it)

Every endpoint takes ``intel:read`` or ``intel:write`` (or ``admin``). REST endpoints read the key as a bearer
token; feeds and TAXII also take it as the password of HTTP basic auth, which is what firewalls and TAXII
clients can send. Each key has a token bucket (``[intel] api_rate`` a second, ``api_burst`` at once): past
it, 429 with ``Retry-After``.
"""

from __future__ import annotations

import base64
import binascii
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBasic, HTTPBasicCredentials, HTTPBearer

from mailwarden.api.keys import ApiKey, verify_key
from mailwarden.api.problems import Problem
from mailwarden.config import OrgConfig
from mailwarden.intel.allowlist import AllowList
from mailwarden.intel.settings import IntelSettings

READ, WRITE = "intel:read", "intel:write"
_bearer = HTTPBearer(auto_error=False, description="An API key from `mailwarden apikey create`.")
_basic = HTTPBasic(auto_error=False, description="Any user name, and an API key as the password (for firewalls and "
                                                 "TAXII clients).")


class RateLimiter:
    """A token bucket per key: ``rate`` requests a second on average, ``burst`` at once."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 when the request may go ahead; else the seconds until it could."""
        with self._lock:
            now = self.clock()
            tokens, updated = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - updated) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > 100_000:
                self._buckets.clear()
            return (1 - tokens) / self.rate


@dataclass
class IntelContext:
    """What the intel routes need besides the engine: settings, the allow-list, who we are, the limiter."""

    settings: IntelSettings = field(default_factory=IntelSettings)
    org: OrgConfig = field(default_factory=OrgConfig)
    allow: AllowList = field(default_factory=AllowList.for_org)
    limiter: RateLimiter | None = None
    cache: dict[Any, Any] = field(default_factory=dict)  # rendered feeds (``feedserver``)
    cache_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def producer(self) -> str:
        return self.org.name or "Mailwarden"

    @classmethod
    def build(cls, settings: IntelSettings | None, org: OrgConfig | None) -> IntelContext:
        settings = settings or IntelSettings()
        org = org or OrgConfig()
        return cls(settings, org, AllowList.for_org(org, settings.allowlist),
                   RateLimiter(settings.api_rate, settings.api_burst))


class Refused(Exception):
    """Raised by the key check: the status, the reason and the headers to answer with (TAXII or problem)."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None, **extensions: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers
        self.extensions = extensions


def intel_context(request: Request) -> IntelContext:
    found = getattr(request.app.state, "intel", None)
    if found is None:
        services = request.app.state.services
        found = IntelContext.build(getattr(services, "intel", None), getattr(services, "org", None))
        request.app.state.intel = found
    return found


def _key_from(request: Request, bearer: HTTPAuthorizationCredentials | None, basic: HTTPBasicCredentials | None,
              scope: str) -> ApiKey:
    challenge = {"WWW-Authenticate": 'Bearer, Basic realm="mailwarden"' if basic is not None or
                 request.url.path.startswith(("/feeds", "/taxii2")) else "Bearer"}
    token = None
    if bearer is not None and bearer.scheme.lower() == "bearer":
        token = bearer.credentials
    elif basic is not None:
        token = basic.password
    if not token:
        raise Refused(401, "an API key is required (a bearer token, or the password of basic auth)", challenge)
    key = verify_key(request.app.state.services.engine, token)
    if key is None:
        raise Refused(401, "the API key is not valid", challenge)
    if not key.allows(scope):
        raise Refused(403, f"the API key lacks the scope {scope!r}", required_scope=scope)
    limiter = intel_context(request).limiter
    if limiter is not None:
        wait = limiter.take(key.key_id)
        if wait > 0:
            raise Refused(429, "too many requests for this API key; slow down",
                          {"Retry-After": str(max(1, math.ceil(wait)))})
    return key


def require_key(scope: str) -> Callable[..., ApiKey]:
    """For REST routes: a bearer key with ``scope``, within its rate limit (problem details otherwise)."""

    def check(request: Request,
              bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> ApiKey:
        try:
            return _key_from(request, bearer, None, scope)
        except Refused as exc:
            raise Problem(exc.status, exc.detail, headers=exc.headers, **exc.extensions) from exc

    return check


def require_feed_key(scope: str) -> Callable[..., ApiKey]:
    """For feeds and TAXII: a bearer key or a basic-auth password; raises ``Refused`` for the router to render."""

    def check(request: Request,
              bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
              basic: Annotated[HTTPBasicCredentials | None, Depends(_basic)]) -> ApiKey:
        if bearer is not None and bearer.scheme.lower() == "basic":
            basic = _basic_from(bearer.credentials)
            bearer = None
        return _key_from(request, bearer, basic, scope)

    return check


def _basic_from(encoded: str) -> HTTPBasicCredentials | None:
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return HTTPBasicCredentials(username=user, password=password)


def actor_of(key: ApiKey) -> str:
    return f"apikey:{key.name}"


def install(app: FastAPI) -> None:
    """Add the intel routers (REST under ``prefix``, TAXII, feeds) and the TAXII error renderer to ``app``."""
    from mailwarden.api.routers import events, indicators, webhooks
    from mailwarden.intel import feedserver, taxii

    for router in (indicators.router, events.router, webhooks.router, indicators.audit_router):
        app.include_router(router, prefix="/api/v1")
    app.include_router(taxii.router)
    app.include_router(feedserver.router)
    taxii.install_errors(app)
