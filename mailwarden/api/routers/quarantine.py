"""``/api/v1/quarantine``: held messages, their sanitised preview, release and deletion."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from mailwarden.api.app import Services, require
from mailwarden.api.keys import ApiKey
from mailwarden.api.problems import Problem
from mailwarden.gateway import quarantine
from mailwarden.gateway.paging import DEFAULT_LIMIT, MAX_LIMIT, CursorError

router = APIRouter(prefix="/quarantine", tags=["quarantine"])
STATES = ("held", "released", "deleted")


@router.get("", summary="List quarantined messages, newest first")
def list_quarantine(services: Services, _: Annotated[ApiKey, Depends(require("quarantine:read"))],
                    state: Annotated[str, Query(pattern="^(held|released|deleted)$")] = "held",
                    cursor: str | None = None,
                    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT) -> dict[str, Any]:
    try:
        page = quarantine.list_held(services.engine, state=state, cursor=cursor, limit=limit)
    except CursorError as exc:
        raise Problem(400, str(exc)) from exc
    return {"items": [quarantine.displayable(item) for item in page.items], "next_cursor": page.next_cursor}


@router.get("/{quarantine_id}", summary="One quarantined message with a text-only, escaped preview")
def show(quarantine_id: int, services: Services,
         _: Annotated[ApiKey, Depends(require("quarantine:read"))]) -> dict[str, Any]:
    found = quarantine.preview(services.engine, services.spool, quarantine_id)
    if found is None:
        raise Problem(404, f"no quarantined message {quarantine_id}")
    return found


@router.post("/{quarantine_id}/release", summary="Deliver the original message and write the Release Log")
def release(quarantine_id: int, services: Services,
            key: Annotated[ApiKey, Depends(require("quarantine:release"))]) -> dict[str, Any]:
    if quarantine.get(services.engine, quarantine_id) is None:
        raise Problem(404, f"no quarantined message {quarantine_id}")
    try:
        done = quarantine.release(services.engine, services.spool, quarantine_id, who=f"apikey:{key.name}",
                                  destination=services.settings.relay, now=services.clock(),
                                  expire_after=services.settings.expire_after, authserv_id=services.authserv_id,
                                  server_name=services.settings.server_name)
    except quarantine.QuarantineError as exc:
        raise Problem(409, str(exc)) from exc
    services.wake()
    return done


@router.delete("/{quarantine_id}", status_code=204, summary="Delete a held message for good")
def delete(quarantine_id: int, services: Services,
           _: Annotated[ApiKey, Depends(require("quarantine:release"))]) -> None:
    if quarantine.get(services.engine, quarantine_id) is None:
        raise Problem(404, f"no quarantined message {quarantine_id}")
    try:
        quarantine.delete(services.engine, services.spool, quarantine_id, now=services.clock())
    except quarantine.QuarantineError as exc:
        raise Problem(409, str(exc)) from exc
