"""``/api/v1/quarantine``: held messages, their sanitised preview, release and deletion.

Operators (``quarantine:read``, ``quarantine:release``, ``admin``) see and act on everything. A user's key
(``quarantine:own``, bound to the user's address) lists, previews and releases the user's own held messages
only: anyone else's is "not found", and a release delivers to the user alone.
"""

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
Reader = Annotated[ApiKey, Depends(require("quarantine:read", "quarantine:own"))]
Releaser = Annotated[ApiKey, Depends(require("quarantine:release", "quarantine:own"))]


def _user(key: ApiKey, operator_scope: str) -> str | None:
    """The user whose messages alone this key may act on; None for an operator's key."""
    if key.allows(operator_scope):
        return None
    if not key.user:
        raise Problem(403, "this quarantine:own key is bound to no user")
    return key.user


@router.get("", summary="List quarantined messages, newest first (a user's key: the user's own)")
def list_quarantine(services: Services, key: Reader,
                    state: Annotated[str, Query(pattern="^(held|released|deleted)$")] = "held",
                    cursor: str | None = None,
                    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT) -> dict[str, Any]:
    user = _user(key, "quarantine:read")
    try:
        page = quarantine.list_held(services.engine, state=state, cursor=cursor, limit=limit, recipient=user)
    except CursorError as exc:
        raise Problem(400, str(exc)) from exc
    return {"items": [quarantine.displayable(item, user) for item in page.items], "next_cursor": page.next_cursor}


@router.get("/{quarantine_id}", summary="One quarantined message with a text-only, escaped preview")
def show(quarantine_id: int, services: Services, key: Reader) -> dict[str, Any]:
    found = quarantine.preview(services.engine, services.spool, quarantine_id, _user(key, "quarantine:read"))
    if found is None:
        raise Problem(404, f"no quarantined message {quarantine_id}")
    return found


@router.post("/{quarantine_id}/release", summary="Deliver the original message and write the Release Log")
def release(quarantine_id: int, services: Services, key: Releaser) -> dict[str, Any]:
    user = _user(key, "quarantine:release")
    found = quarantine.get(services.engine, quarantine_id)
    if found is None or (user is not None and not quarantine.belongs_to(found, user)):
        raise Problem(404, f"no quarantined message {quarantine_id}")
    try:
        done = quarantine.release(services.engine, services.spool, quarantine_id,
                                  who=f"user:{user}" if user else f"apikey:{key.name}",
                                  destination=services.settings.relay, now=services.clock(),
                                  expire_after=services.settings.expire_after, authserv_id=services.authserv_id,
                                  server_name=services.settings.server_name,
                                  recipients=[user] if user else None)
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
