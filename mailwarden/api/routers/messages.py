"""``/api/v1/messages``: the archive. Search (``messages:read``), read, and remove (``messages:delete``) one
message or every message matching a query; each removal is written to the removal log (``/logs/removals``).

Search criteria (all optional, combined with AND): ``sender`` (MAIL FROM or header From address),
``recipient``, ``subject`` (substring, case-insensitive), ``domain`` (a sender, Reply-To or link domain),
``url_host``, ``attachment`` (SHA-256), ``since`` / ``until`` (received, with a timezone). Subjects and
identifiers come back escaped (HTML) and without control characters.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from mailwarden.api.app import ApiServices, Services, require
from mailwarden.api.keys import ApiKey
from mailwarden.api.problems import Problem
from mailwarden.gateway import archive
from mailwarden.gateway.paging import DEFAULT_LIMIT, MAX_LIMIT, CursorError
from mailwarden.store.blobs import BlobError, BlobStore

router = APIRouter(prefix="/messages", tags=["messages"])
Reader = Annotated[ApiKey, Depends(require("messages:read"))]
Deleter = Annotated[ApiKey, Depends(require("messages:delete"))]
Text = Annotated[str | None, Query(max_length=1000)]


def _criteria(sender: str | None, recipient: str | None, subject: str | None, domain: str | None,
              url_host: str | None, attachment: str | None, since: datetime | None,
              until: datetime | None) -> archive.ArchiveQuery:
    query = archive.ArchiveQuery(sender=sender, recipient=recipient, subject=subject, domain=domain,
                                 url_host=url_host, attachment=attachment, since=since, until=until)
    try:
        return query.normalised()
    except archive.ArchiveError as exc:
        raise Problem(400, str(exc)) from exc


def _blobs(services: ApiServices) -> BlobStore:
    if services.blobs is None:
        raise Problem(503, "the archive is not available here")
    return services.blobs


@router.get("/search", summary="Archived messages matching every criterion given, newest first")
def search(services: Services, _: Reader, sender: Text = None, recipient: Text = None, subject: Text = None,
           domain: Text = None, url_host: Text = None, attachment: Text = None, since: datetime | None = None,
           until: datetime | None = None, cursor: str | None = None,
           limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT) -> dict[str, Any]:
    criteria = _criteria(sender, recipient, subject, domain, url_host, attachment, since, until)
    try:
        page = archive.search(services.engine, criteria, cursor=cursor, limit=limit)
    except CursorError as exc:
        raise Problem(400, str(exc)) from exc
    return {"items": [archive.displayable(item) for item in page.items], "next_cursor": page.next_cursor}


@router.get("/{archive_id}", summary="One archived message: its facts and the indicators it carried")
def show(archive_id: int, services: Services, _: Reader) -> dict[str, Any]:
    found = archive.get(services.engine, archive_id)
    if found is None:
        raise Problem(404, f"no archived message {archive_id}")
    return archive.displayable(found)


@router.get("/{archive_id}/raw", summary="The archived message as received (message/rfc822, as a download)",
            response_class=Response)
def raw(archive_id: int, services: Services, _: Reader) -> Response:
    try:
        data = archive.raw(services.engine, _blobs(services), archive_id)
    except BlobError as exc:
        raise Problem(410, str(exc)) from exc
    if data is None:
        raise Problem(404, f"no archived message {archive_id}")
    return Response(data, media_type="message/rfc822",
                    headers={"Content-Disposition": f'attachment; filename="message-{archive_id}.eml"',
                             "X-Content-Type-Options": "nosniff"})


@router.delete("/{archive_id}", summary="Remove one archived message (and its copy still held in quarantine)")
def remove_one(archive_id: int, services: Services, key: Deleter) -> dict[str, Any]:
    if archive.get(services.engine, archive_id) is None:
        raise Problem(404, f"no archived message {archive_id}")
    removal = archive.remove(services.engine, _blobs(services), who=f"apikey:{key.name}", now=services.clock(),
                             ids=[archive_id], spool=services.spool)
    return removal.to_dict()


@router.delete("", summary="Remove every archived message matching the query (at least one criterion)")
def remove_matching(services: Services, key: Deleter, sender: Text = None, recipient: Text = None,
                    subject: Text = None, domain: Text = None, url_host: Text = None, attachment: Text = None,
                    since: datetime | None = None, until: datetime | None = None) -> dict[str, Any]:
    criteria = _criteria(sender, recipient, subject, domain, url_host, attachment, since, until)
    if criteria.empty:
        raise Problem(400, "a removal by query needs at least one criterion")
    removal = archive.remove(services.engine, _blobs(services), who=f"apikey:{key.name}", now=services.clock(),
                             query=criteria, spool=services.spool)
    return removal.to_dict()
