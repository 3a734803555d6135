"""``/api/v1/indicators``: the indicator store: create (one or many), search, update, revoke, sightings, hunts.

    POST /api/v1/indicators?remediate=true
    {"type": "domain", "value": "evil.example", "confidence": 90, "action": "block",
     "valid_until": "2026-06-01T00:00:00Z"}                      (or a list of such objects)

A blocking indicator takes effect at the gateway within ``[intel] reload_interval`` seconds. Posting one
runs a retro-hunt over kept mail (``retrohunt=false`` skips it; ``remediate=true`` removes what it finds) and
the response carries its matches and every action taken. Reads need ``intel:read``, changes ``intel:write``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from mailwarden.api.app import ApiServices, Services
from mailwarden.api.keys import ApiKey
from mailwarden.api.problems import Problem
from mailwarden.gateway.paging import DEFAULT_LIMIT, MAX_LIMIT, CursorError
from mailwarden.intel import hunt, store
from mailwarden.intel.indicators import ACTIONS, SEVERITIES, TYPES
from mailwarden.intel.web import READ, WRITE, IntelContext, actor_of, intel_context, require_key
from mailwarden.store.db import begin_write

PROBLEM = {"description": "A problem document (RFC 9457)", "content": {"application/problem+json": {}}}
ERRORS: dict[int | str, dict[str, Any]] = {400: PROBLEM, 401: PROBLEM, 403: PROBLEM, 422: PROBLEM, 429: PROBLEM}
ERRORS_404: dict[int | str, dict[str, Any]] = {**ERRORS, 404: PROBLEM}
MAX_BULK = 1000

router = APIRouter(prefix="/indicators", tags=["indicators"])
audit_router = APIRouter(prefix="/intel", tags=["indicators"])
Reader = Annotated[ApiKey, Depends(require_key(READ))]
Writer = Annotated[ApiKey, Depends(require_key(WRITE))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
IndicatorId = Annotated[int, Path(ge=1, le=2**62)]
Intel = Annotated[IntelContext, Depends(intel_context)]
IndicatorType = Literal["domain", "url", "ipv4", "ipv6", "email-addr", "file-sha256"]
Action = Literal["block", "monitor"]
Severity = Literal["low", "medium", "high", "critical"]
Tag = Annotated[str, Field(min_length=1, max_length=store.MAX_TAG_CHARS)]
assert set(TYPES) == set(IndicatorType.__args__) and set(ACTIONS) == set(Action.__args__)  # type: ignore[attr-defined]
assert set(SEVERITIES) == set(Severity.__args__)  # type: ignore[attr-defined]


class IndicatorIn(BaseModel):
    """An indicator to create (or to state again: what is given replaces what is stored; tags are added)."""

    model_config = ConfigDict(extra="forbid")
    type: IndicatorType
    value: str = Field(min_length=1, max_length=2048)
    confidence: int = Field(50, ge=0, le=100)
    action: Action = "monitor"
    severity: Severity | None = None
    valid_until: AwareDatetime | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=store.MAX_TAGS)
    description: str = Field("", max_length=2000)


class IndicatorPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    confidence: int | None = Field(None, ge=0, le=100)
    action: Action | None = None
    severity: Severity | None = None
    valid_until: AwareDatetime | None = None
    tags: list[Tag] | None = Field(None, max_length=store.MAX_TAGS)
    description: str | None = Field(None, max_length=2000)


class RevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=500)


def _blobs(services: ApiServices) -> Any:
    if services.blobs is not None:
        return services.blobs
    from mailwarden.store.blobs import BlobStore

    return BlobStore(services.spool.directory.parent / "archive")


def _hunt(services: ApiServices, context: IntelContext, indicator_id: int, key: ApiKey,
          remediate: bool) -> dict[str, Any] | None:
    found = hunt.retrohunt(services.engine, indicator_id, now=services.clock(), actor=actor_of(key),
                           remediate=remediate, blobs=_blobs(services), spool=services.spool,
                           producer=context.producer)
    return found.to_dict() if found is not None else None


def _create_one(services: ApiServices, context: IntelContext, item: IndicatorIn, key: ApiKey, retrohunt: bool | None,
                remediate: bool) -> tuple[int, dict[str, Any]]:
    new = store.NewIndicator(item.type, item.value, confidence=item.confidence, action=item.action,
                             severity=item.severity, source=f"api:{key.name}", tags=tuple(item.tags),
                             description=item.description, valid_until=item.valid_until)
    with begin_write(services.engine) as connection:
        change = store.record(connection, new, now=services.clock(), actor=actor_of(key), allow=context.allow,
                              producer=context.producer)
    if change.indicator is None:
        return 422, {"error": change.refused}
    result: dict[str, Any] = {"indicator": change.indicator, "created": change.created}
    if retrohunt if retrohunt is not None else item.action == "block":
        result["retrohunt"] = _hunt(services, context, change.indicator["id"], key, remediate)
    return (201 if change.created else 200), result


@router.post("", summary="Create or update indicators (one object or a list); blocks take effect at once",
             responses={**ERRORS, 200: {"description": "An indicator that existed, updated"},
                        201: {"description": "A new indicator"}}, status_code=201)
def create(services: Services, key: Writer, context: Intel, response: Response,
           body: Annotated[IndicatorIn | list[IndicatorIn], Body()],
           retrohunt: Annotated[bool | None, Query(description="Hunt kept mail for it (default: for blocks)")] = None,
           remediate: Annotated[bool, Query(description="Remove what the hunt finds")] = False) -> dict[str, Any]:
    if isinstance(body, list):
        if len(body) > MAX_BULK:
            raise Problem(422, f"at most {MAX_BULK} indicators at once")
        items = []
        for index, item in enumerate(body):
            status, result = _create_one(services, context, item, key, retrohunt, remediate)
            items.append({"index": index, "status": status, **result})
        response.status_code = 200
        return {"items": items}
    status, result = _create_one(services, context, body, key, retrohunt, remediate)
    if status == 422:
        raise Problem(422, result["error"])
    response.status_code = status
    return result


@router.get("", summary="Search indicators, newest first (cursor pagination)", responses=ERRORS)
def search(services: Services, _: Reader,
           type: Annotated[IndicatorType | None, Query()] = None,
           value: Annotated[str | None, Query(max_length=2048)] = None,
           contains: Annotated[str | None, Query(max_length=256)] = None,
           source: Annotated[str | None, Query(max_length=200)] = None,
           tag: Annotated[str | None, Query(max_length=200)] = None,
           action: Annotated[Action | None, Query()] = None,
           min_confidence: Annotated[int | None, Query(ge=0, le=100)] = None,
           active: Annotated[bool | None, Query(description="true: in force; false: revoked or expired")] = None,
           modified_since: Annotated[AwareDatetime | None, Query()] = None,
           cursor: Annotated[str | None, Query(max_length=200)] = None, limit: Limit = DEFAULT_LIMIT) -> dict[str, Any]:
    filters = store.Filters(type=type, value=value, contains=contains, source=source, tag=tag, action=action,
                            min_confidence=min_confidence, active=active, modified_since=modified_since)
    try:
        return store.search(services.engine, filters, cursor=cursor, limit=limit, now=services.clock()).to_dict()
    except CursorError as exc:
        raise Problem(400, str(exc)) from exc


def _found(services: ApiServices, indicator_id: int) -> dict[str, Any]:
    found = store.get(services.engine, indicator_id, services.clock())
    if found is None:
        raise Problem(404, f"no indicator {indicator_id}")
    return found


@router.get("/{indicator_id}", summary="One indicator", responses=ERRORS_404)
def show(indicator_id: IndicatorId, services: Services, _: Reader) -> dict[str, Any]:
    return _found(services, indicator_id)


@router.patch("/{indicator_id}", summary="Change confidence, action, severity, validity, tags or description",
              responses=ERRORS_404)
def change(indicator_id: IndicatorId, body: IndicatorPatch, services: Services, key: Writer,
           context: Intel) -> dict[str, Any]:
    with begin_write(services.engine) as connection:
        done = store.update_indicator(connection, indicator_id, body.model_dump(exclude_none=True),
                                      now=services.clock(), actor=actor_of(key), allow=context.allow,
                                      producer=context.producer)
    if done is None:
        raise Problem(404, f"no indicator {indicator_id}")
    if done.indicator is None:
        raise Problem(422, done.refused)
    return {"indicator": done.indicator, "changed": done.changed, "changes": done.changes}


@router.post("/{indicator_id}/revoke", summary="Revoke an indicator (kept, published as revoked, never blocks)",
             responses=ERRORS_404)
def revoke(indicator_id: IndicatorId, services: Services, key: Writer, context: Intel,
           body: Annotated[RevokeIn | None, Body()] = None) -> dict[str, Any]:
    with begin_write(services.engine) as connection:
        done = store.revoke(connection, indicator_id, now=services.clock(), actor=actor_of(key),
                            reason=body.reason if body else "", producer=context.producer)
    if done is None:
        raise Problem(404, f"no indicator {indicator_id}")
    return {"indicator": done.indicator, "changed": done.changed}


@router.get("/{indicator_id}/sightings", summary="The messages that carried an indicator", responses=ERRORS_404)
def sightings(indicator_id: IndicatorId, services: Services, _: Reader,
              cursor: Annotated[str | None, Query(max_length=200)] = None,
              limit: Limit = DEFAULT_LIMIT) -> dict[str, Any]:
    _found(services, indicator_id)
    try:
        return store.sightings_of(services.engine, indicator_id, cursor=cursor, limit=limit).to_dict()
    except CursorError as exc:
        raise Problem(400, str(exc)) from exc


@router.post("/{indicator_id}/retrohunt", summary="Hunt kept mail for an indicator (remediate=true removes it)",
             responses=ERRORS_404)
def retrohunt(indicator_id: IndicatorId, services: Services, key: Writer, context: Intel,
              remediate: Annotated[bool, Query()] = False) -> dict[str, Any]:
    found = _hunt(services, context, indicator_id, key, remediate)
    if found is None:
        raise Problem(404, f"no indicator {indicator_id}")
    return found


@router.get("/{indicator_id}/hunts", summary="The retro-hunts run for an indicator", responses=ERRORS_404)
def hunts(indicator_id: IndicatorId, services: Services, _: Reader) -> dict[str, Any]:
    _found(services, indicator_id)
    return {"items": hunt.list_hunts(services.engine, indicator_id)}


@audit_router.get("/audit", summary="The audit log of every change to the indicators, newest first",
                  responses=ERRORS)
def audit(services: Services, _: Reader, indicator_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
          actor: Annotated[str | None, Query(max_length=200)] = None,
          cursor: Annotated[str | None, Query(max_length=200)] = None, limit: Limit = DEFAULT_LIMIT) -> dict[str, Any]:
    try:
        return store.audit_log(services.engine, indicator_id=indicator_id, actor=actor, cursor=cursor,
                               limit=limit).to_dict()
    except CursorError as exc:
        raise Problem(400, str(exc)) from exc

