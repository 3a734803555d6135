"""``/api/v1/queue``: the delivery queue (admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from mailwarden.api.app import Services, require
from mailwarden.api.keys import ApiKey
from mailwarden.api.problems import Problem
from mailwarden.gateway import queue
from mailwarden.gateway.paging import DEFAULT_LIMIT, MAX_LIMIT, CursorError

router = APIRouter(prefix="/queue", tags=["queue"])


@router.get("", summary="Queue entries, newest first")
def list_queue(services: Services, _: Annotated[ApiKey, Depends(require("admin"))],
               state: Annotated[list[str] | None, Query()] = None, cursor: str | None = None,
               limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT) -> dict[str, Any]:
    try:
        return queue.list_entries(services.engine, states=state or (), cursor=cursor, limit=limit).to_dict()
    except CursorError as exc:
        raise Problem(400, str(exc)) from exc
