"""``/api/v1/logs``: the Rejection Log, the Release Log and the archive's removal log, filtered by time and
reason, cursor-paginated."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from mailwarden.api.app import Services, require
from mailwarden.api.keys import ApiKey
from mailwarden.api.problems import Problem
from mailwarden.gateway import archive, logs
from mailwarden.gateway.paging import DEFAULT_LIMIT, MAX_LIMIT, CursorError, Page

router = APIRouter(prefix="/logs", tags=["logs"])
Reader = Annotated[ApiKey, Depends(require("read:logs"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise Problem(400, f"{name} needs a timezone (e.g. 2026-03-02T10:00:00Z)")
    return value


def _checked(run: Any) -> dict[str, Any]:
    try:
        page: Page = run()
    except CursorError as exc:
        raise Problem(400, str(exc)) from exc
    return page.to_dict()


@router.get("/rejections", summary="Messages refused at SMTP time, newest first")
def rejections(services: Services, _: Reader, since: datetime | None = None, until: datetime | None = None,
               reason: Annotated[str | None, Query(pattern="^(dmarc|threat|protocol)$")] = None,
               cursor: str | None = None, limit: Limit = DEFAULT_LIMIT) -> dict[str, Any]:
    start, end = _aware(since, "since"), _aware(until, "until")
    return _checked(lambda: logs.list_rejections(services.engine, since=start, until=end, reason=reason,
                                                 cursor=cursor, limit=limit))


@router.get("/releases", summary="Quarantined messages someone released, newest first")
def releases(services: Services, _: Reader, since: datetime | None = None, until: datetime | None = None,
             dmarc: str | None = None, verdict: str | None = None, who: str | None = None,
             cursor: str | None = None, limit: Limit = DEFAULT_LIMIT) -> dict[str, Any]:
    start, end = _aware(since, "since"), _aware(until, "until")
    return _checked(lambda: logs.list_releases(services.engine, since=start, until=end, dmarc=dmarc,
                                               verdict=verdict, who=who, cursor=cursor, limit=limit))


@router.get("/removals", summary="Removals from the archive (who, when, what query, how many), newest first")
def removals(services: Services, _: Annotated[ApiKey, Depends(require("read:logs", "messages:read"))],
             since: datetime | None = None, until: datetime | None = None, who: str | None = None,
             cursor: str | None = None, limit: Limit = DEFAULT_LIMIT) -> dict[str, Any]:
    start, end = _aware(since, "since"), _aware(until, "until")
    return _checked(lambda: archive.list_removals(services.engine, since=start, until=end, who=who, cursor=cursor,
                                                  limit=limit))
