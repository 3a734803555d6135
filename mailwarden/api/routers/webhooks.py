"""``/api/v1/webhooks``: webhook deliveries, the dead-letter list, and replay.

    GET  /api/v1/webhooks/deliveries?state=dead          the dead-letter list (intel:read)
    POST /api/v1/webhooks/deliveries/{id}/replay         send one again from the first attempt (intel:write)
    POST /api/v1/webhooks/replay?state=dead              send every dead (or delivered) one again (intel:write)
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query

from mailwarden.api.app import Services
from mailwarden.api.keys import ApiKey
from mailwarden.api.problems import Problem
from mailwarden.api.routers.indicators import ERRORS, ERRORS_404
from mailwarden.gateway.paging import DEFAULT_LIMIT, MAX_LIMIT, CursorError
from mailwarden.intel import outbox
from mailwarden.intel.store import audit
from mailwarden.intel.web import READ, WRITE, actor_of, require_key
from mailwarden.store.db import begin_write

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
Reader = Annotated[ApiKey, Depends(require_key(READ))]
Writer = Annotated[ApiKey, Depends(require_key(WRITE))]


@router.get("/deliveries", summary="Webhook deliveries, newest first (state=dead: the dead-letter list)",
            responses=ERRORS)
def deliveries(services: Services, _: Reader,
               state: Annotated[Literal["pending", "delivering", "delivered", "dead"] | None, Query()] = None,
               sink: Annotated[str | None, Query(max_length=100)] = None,
               cursor: Annotated[str | None, Query(max_length=200)] = None,
               limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT) -> dict[str, Any]:
    try:
        return outbox.list_deliveries(services.engine, state=state, sink=sink, cursor=cursor, limit=limit).to_dict()
    except CursorError as exc:
        raise Problem(400, str(exc)) from exc


def _recorded(services: Any, key: ApiKey, ids: list[int]) -> None:
    with begin_write(services.engine) as connection:
        audit(connection, services.clock(), actor_of(key), "webhook_replay", None, deliveries=ids)


@router.post("/deliveries/{delivery_id}/replay", summary="Send a dead or delivered delivery again",
             responses=ERRORS_404)
def replay_one(delivery_id: Annotated[int, Path(ge=1, le=2**62)], services: Services, key: Writer) -> dict[str, Any]:
    done = outbox.replay(services.engine, now=services.clock(), ids=[delivery_id])
    if not done:
        raise Problem(404, f"no dead or delivered delivery {delivery_id}")
    _recorded(services, key, done)
    return {"replayed": done}


@router.post("/replay", summary="Send every dead (or delivered) delivery again", responses=ERRORS)
def replay_all(services: Services, key: Writer,
               state: Annotated[Literal["dead", "delivered"], Query()] = "dead",
               sink: Annotated[str | None, Query(max_length=100)] = None) -> dict[str, Any]:
    done = outbox.replay(services.engine, now=services.clock(), state=state, sink=sink)
    if done:
        _recorded(services, key, done)
    return {"replayed": done}
