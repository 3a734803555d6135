"""The API app, composed in one place: problem details, the bearer-key security scheme, the routers.

    app = create_app(ApiServices(engine, spool, settings, authserv_id, clock, wake))

Every route depends on ``require(scope)``: no key is 401, a key without the scope is 403.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from mailwarden import __version__
from mailwarden.api import problems
from mailwarden.api.keys import ApiKey, verify_key
from mailwarden.api.problems import Problem
from mailwarden.config import OrgConfig
from mailwarden.gateway.queue import Clock
from mailwarden.gateway.settings import GatewaySettings
from mailwarden.gateway.spool import Spool
from mailwarden.intel.settings import IntelSettings
from mailwarden.resolver import Resolver
from mailwarden.store.blobs import BlobStore

API_PREFIX = "/api/v1"
_bearer = HTTPBearer(auto_error=False, description="An API key from `mailwarden apikey create`.")


@dataclass(frozen=True)
class ApiServices:
    """What the routes work with."""

    engine: Engine
    spool: Spool
    settings: GatewaySettings
    authserv_id: str
    clock: Clock
    wake: Callable[[], None]  # tell the delivery worker new entries are due (thread-safe)
    org: OrgConfig | None = None  # own and partner domains, [dmarc] (None: an API without the gateway's config)
    resolver: Resolver | None = None  # the gateway's DNS, for checks on demand (None: none are made)
    blobs: BlobStore | None = None  # the archive's blobs (None: archived messages cannot be read)
    intel: IntelSettings | None = None  # [intel]: feeds, rate limits, the allow-list (None: the defaults)


def services(request: Request) -> ApiServices:
    found: ApiServices = request.app.state.services
    return found


Services = Annotated[ApiServices, Depends(services)]


def require(scope: str, *alternatives: str) -> Callable[..., ApiKey]:
    """A dependency: the caller's API key, which must carry ``scope`` or one of the ``alternatives`` (or
    ``admin``); the route then sees which one from the key itself (``quarantine:own`` limits what it shows)."""

    def check(request: Request,
              credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> ApiKey:
        challenge = {"WWW-Authenticate": "Bearer"}
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Problem(401, "an API key is required as a bearer token", headers=challenge)
        key = verify_key(services(request).engine, credentials.credentials)
        if key is None:
            raise Problem(401, "the API key is not valid", headers=challenge)
        if not any(key.allows(s) for s in (scope, *alternatives)):
            accepted: dict[str, Any] = {"accepted_scopes": [scope, *alternatives]} if alternatives else {}
            raise Problem(403, f"the API key lacks the scope {scope!r}", required_scope=scope, **accepted)
        _within_rate_limit(request, key)
        return key

    return check


def _within_rate_limit(request: Request, key: ApiKey) -> None:
    """Every route shares the per-key token bucket of ``[intel] api_rate``/``api_burst`` (429 beyond it)."""
    from mailwarden.intel.web import intel_context

    limiter = intel_context(request).limiter
    wait = limiter.take(key.key_id) if limiter is not None else 0.0
    if wait > 0:
        raise Problem(429, "too many requests for this API key; slow down",
                      headers={"Retry-After": str(max(1, math.ceil(wait)))})


def create_app(api_services: ApiServices) -> FastAPI:
    from mailwarden.api.routers import logs, messages, quarantine, queue

    app = FastAPI(title="Mailwarden", version=__version__, openapi_url="/openapi.json", docs_url=None,
                  redoc_url=None)
    app.state.services = api_services
    problems.install(app)
    for router in (quarantine.router, logs.router, queue.router, messages.router):
        app.include_router(router, prefix=API_PREFIX)
    from mailwarden.api.routers import dmarc

    app.include_router(dmarc.router, prefix=API_PREFIX)
    app.include_router(dmarc.logs_router, prefix=API_PREFIX)  # /logs/dmarc-alerts, next to the other logs
    from mailwarden.intel.web import install as install_intel

    install_intel(app)  # /api/v1/indicators, /events, /webhooks, /intel/audit; /taxii2/; /feeds/
    return app
