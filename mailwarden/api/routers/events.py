"""``/api/v1/events``: the events outbox (message.scanned, threat.detected, indicator.upserted, ...), for polling.

Newest first with a cursor; ``after_id`` returns only events newer than one already seen (what a SIEM polls
with). Needs ``intel:read``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from mailwarden.api.app import Services
from mailwarden.api.keys import ApiKey
from mailwarden.api.problems import Problem
from mailwarden.api.routers.indicators import ERRORS
from mailwarden.gateway.paging import DEFAULT_LIMIT, MAX_LIMIT, CursorError, page
from mailwarden.intel.outbox import EVENTS
from mailwarden.intel.web import READ, require_key

router = APIRouter(prefix="/events", tags=["events"])


@router.get("", summary="Events, newest first (cursor pagination)", responses=ERRORS)
def list_events(services: Services, _: Annotated[ApiKey, Depends(require_key(READ))],
                type: Annotated[list[str] | None, Query(max_length=20)] = None,
                after_id: Annotated[int | None, Query(ge=0, le=2**62)] = None,
                cursor: Annotated[str | None, Query(max_length=200)] = None,
                limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT) -> dict[str, Any]:
    query = select(EVENTS)
    if type:
        query = query.where(EVENTS.c.type.in_(type))
    if after_id is not None:
        query = query.where(EVENTS.c.id > after_id)
    try:
        with services.engine.connect() as connection:
            return page(connection, EVENTS, query, cursor, limit).to_dict()
    except CursorError as exc:
        raise Problem(400, str(exc)) from exc
