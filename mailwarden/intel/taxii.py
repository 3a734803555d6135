"""A TAXII 2.1 server (read-only) over the STIX versions in ``intel_objects``.

    GET /taxii2/                                               discovery
    GET /taxii2/api/                                           the API root
    GET /taxii2/api/collections/                               collections (one: every published object)
    GET /taxii2/api/collections/{id}/                          one collection
    GET /taxii2/api/collections/{id}/objects/                  an envelope of objects
    GET /taxii2/api/collections/{id}/objects/{object_id}/      one object's versions (an envelope)
    GET /taxii2/api/collections/{id}/objects/{object_id}/versions/
    GET /taxii2/api/collections/{id}/manifest/

Filters (TAXII 2.1 section 3.4): ``added_after``, ``limit``, ``next``, ``match[id]``, ``match[type]``,
``match[version]`` (``last``, the default; ``first``; ``all``; or timestamps) and ``match[spec_version]``.
Paging: an envelope says ``more`` and gives ``next``, an opaque token for the following page; the headers
``X-TAXII-Date-Added-First`` and ``-Last`` bound the page. Every answer, errors included, is
``application/taxii+json;version=2.1``; a request whose Accept header allows neither that nor any JSON gets 406.
Objects of indicators that the allow-list now covers are left out.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import ColumnElement, Select, func, or_, select

from mailwarden.api.keys import ApiKey
from mailwarden.intel.indicators import stable_uuid
from mailwarden.intel.stix import OBJECTS, STIX_MEDIA_TYPE, parse_stix_time, stix_time
from mailwarden.intel.store import INDICATORS
from mailwarden.intel.web import READ, Refused, intel_context, require_feed_key

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"
API_ROOT = "/taxii2/api/"
COLLECTION_ID = stable_uuid("taxii-collection", "indicators")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_CONTENT_LENGTH = 104_857_600


class TaxiiError(Exception):
    """Raised by a TAXII route: answered with a TAXII error message, not a problem document."""

    def __init__(self, status: int, title: str, description: str = "", headers: dict[str, str] | None = None) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.description = description
        self.headers = headers


def taxii_response(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers, media_type=TAXII_MEDIA_TYPE)


async def _taxii_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TaxiiError | Refused)
    if isinstance(exc, Refused):
        exc = TaxiiError(exc.status, exc.detail, headers=exc.headers)
    body = {"title": exc.title, "http_status": str(exc.status)}
    if exc.description:
        body["description"] = exc.description
    return taxii_response(body, exc.status, exc.headers)


def install_errors(app: FastAPI) -> None:
    app.add_exception_handler(TaxiiError, _taxii_error)
    app.add_exception_handler(Refused, _taxii_error)  # feeds render Refused themselves; TAXII routes raise it


def _acceptable(request: Request) -> None:
    accept = request.headers.get("accept", "")
    if not accept:
        return
    for part in accept.split(","):
        media = part.split(";", 1)[0].strip().lower()
        params = part.replace(" ", "").lower()
        if media in ("*/*", "application/*", "application/json"):
            return
        if media == "application/taxii+json" and ("version=" not in params or "version=2.1" in params):
            return
    raise TaxiiError(406, "Not Acceptable", f"this server speaks {TAXII_MEDIA_TYPE}")


def taxii_key(request: Request, key: Annotated[ApiKey, Depends(require_feed_key(READ))]) -> ApiKey:
    _acceptable(request)
    return key


Reader = Annotated[ApiKey, Depends(taxii_key)]
router = APIRouter(prefix="/taxii2", tags=["taxii"], include_in_schema=False)


def _collection() -> dict[str, Any]:
    return {"id": COLLECTION_ID, "title": "Mailwarden indicators",
            "description": "Indicators, sightings, identities and relationships Mailwarden learned or was given",
            "can_read": True, "can_write": False, "media_types": [STIX_MEDIA_TYPE]}


@router.get("/")
def discovery(request: Request, _: Reader) -> JSONResponse:
    root = str(request.base_url).rstrip("/") + API_ROOT
    title = f"{intel_context(request).producer} TAXII server"
    return taxii_response({"title": title, "description": "Threat intelligence from Mailwarden's mail gateway",
                           "default": root, "api_roots": [root]})


@router.get("/api/")
def api_root(request: Request, _: Reader) -> JSONResponse:
    return taxii_response({"title": f"{intel_context(request).producer} indicators",
                           "versions": [TAXII_MEDIA_TYPE], "max_content_length": MAX_CONTENT_LENGTH})


@router.get("/api/collections/")
def collections(_: Reader) -> JSONResponse:
    return taxii_response({"collections": [_collection()]})


def _check_collection(collection_id: str) -> None:
    if collection_id != COLLECTION_ID:
        raise TaxiiError(404, "Collection not found", f"no collection {collection_id[:80]!r}")


@router.get("/api/collections/{collection_id}/")
def collection(collection_id: str, _: Reader) -> JSONResponse:
    _check_collection(collection_id)
    return taxii_response(_collection())


@router.get("/api/status/{status_id}/")
def status(status_id: str, _: Reader) -> JSONResponse:
    raise TaxiiError(404, "Status not found", "this server takes no objects, so it has no status resources")


# --- queries -------------------------------------------------------------------------------------------

def _split(values: Sequence[str] | None) -> list[str]:
    return [v.strip() for item in values or () for v in item.split(",") if v.strip()]


def _time(text: str, name: str) -> datetime:
    try:
        return parse_stix_time(text)
    except ValueError as exc:
        raise TaxiiError(400, "Bad Request", f"{name}: expected a timestamp such as 2026-03-02T12:00:00.000Z") \
            from exc


def _version_filter(versions: list[str]) -> ColumnElement[bool] | None:
    """``match[version]``: last (default), first, all, or specific versions (any of them)."""
    wanted = versions or ["last"]
    if "all" in wanted:
        return None
    inner = OBJECTS.alias("newer")
    conditions: list[ColumnElement[bool]] = []
    for item in wanted:
        if item == "last":
            conditions.append(OBJECTS.c.latest.is_(True))
        elif item == "first":
            conditions.append(OBJECTS.c.version == select(func.min(inner.c.version))
                              .where(inner.c.stix_id == OBJECTS.c.stix_id).scalar_subquery())
        else:
            conditions.append(OBJECTS.c.version == _time(item, "match[version]"))
    return or_(*conditions)


def encode_next(date_added: datetime, row_id: int) -> str:
    """The ``next`` token: where the page ended, in the collection's order (date added, then id)."""
    text = f"{date_added.astimezone(UTC).isoformat()}|{row_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_next(token: str) -> tuple[datetime, int]:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
        when, _, row_id = text.partition("|")
        parsed = datetime.fromisoformat(when)
        if parsed.tzinfo is None or not row_id.isdigit():
            raise ValueError(text)
        return parsed, int(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise TaxiiError(400, "Bad Request", "next: not a token this server gave") from exc


def _query(*, added_after: str | None, ids: list[str], types: list[str], versions: list[str],
           spec_versions: list[str], next_token: str | None, object_id: str | None = None) -> Select[Any]:
    query = select(OBJECTS)
    if spec_versions and "2.1" not in spec_versions:
        query = query.where(OBJECTS.c.id < 0)  # we only have STIX 2.1
    if added_after:
        query = query.where(OBJECTS.c.date_added > _time(added_after, "added_after"))
    if object_id is not None:
        query = query.where(OBJECTS.c.stix_id == object_id)
    if ids:
        query = query.where(OBJECTS.c.stix_id.in_(ids))
    if types:
        query = query.where(OBJECTS.c.type.in_(types))
    version = _version_filter(versions)
    if version is not None:
        query = query.where(version)
    if next_token:
        after, row_id = decode_next(next_token)
        query = query.where(or_(OBJECTS.c.date_added > after,
                                (OBJECTS.c.date_added == after) & (OBJECTS.c.id > row_id)))
    return query.order_by(OBJECTS.c.date_added, OBJECTS.c.id)


def _page(request: Request, query: Select[Any], limit: int | None) -> tuple[list[Any], bool, str | None]:
    size = max(1, min(limit or DEFAULT_LIMIT, MAX_LIMIT))
    engine = request.app.state.services.engine
    allow = intel_context(request).allow
    with engine.connect() as connection:
        rows = list(connection.execute(query.limit(size + 1)))
        more = len(rows) > size
        rows = rows[:size]
        wanted = {r.indicator_id for r in rows if r.indicator_id is not None}
        values = {r.id: (r.type, r.value) for r in connection.execute(
            select(INDICATORS.c.id, INDICATORS.c.type, INDICATORS.c.value).where(INDICATORS.c.id.in_(wanted)))} \
            if wanted else {}
    token = encode_next(rows[-1].date_added, rows[-1].id) if more and rows else None
    shown = [r for r in rows if r.indicator_id not in values or allow.allows(*values[r.indicator_id])]
    return shown, more, token


def _headers(rows: list[Any]) -> dict[str, str]:
    if not rows:
        return {}
    added = [r.date_added for r in rows]
    return {"X-TAXII-Date-Added-First": stix_time(min(added)), "X-TAXII-Date-Added-Last": stix_time(max(added))}


def _envelope(rows: list[Any], more: bool, token: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"more": more}
    if token:
        body["next"] = token
    if rows:
        body["objects"] = [r.object for r in rows]
    return body


AddedAfter = Annotated[str | None, Query()]
Limit = Annotated[int | None, Query(ge=1)]
Next = Annotated[str | None, Query(alias="next")]
MatchId = Annotated[list[str] | None, Query(alias="match[id]")]
MatchType = Annotated[list[str] | None, Query(alias="match[type]")]
MatchVersion = Annotated[list[str] | None, Query(alias="match[version]")]
MatchSpec = Annotated[list[str] | None, Query(alias="match[spec_version]")]


@router.get("/api/collections/{collection_id}/objects/")
def objects(collection_id: str, request: Request, _: Reader, added_after: AddedAfter = None, limit: Limit = None,
            next_token: Next = None, match_id: MatchId = None, match_type: MatchType = None,
            match_version: MatchVersion = None, match_spec: MatchSpec = None) -> Response:
    _check_collection(collection_id)
    query = _query(added_after=added_after, ids=_split(match_id), types=_split(match_type),
                   versions=_split(match_version), spec_versions=_split(match_spec), next_token=next_token)
    rows, more, token = _page(request, query, limit)
    return taxii_response(_envelope(rows, more, token), headers=_headers(rows))


@router.get("/api/collections/{collection_id}/objects/{object_id}/")
def get_object(collection_id: str, object_id: str, request: Request, _: Reader, added_after: AddedAfter = None,
               limit: Limit = None, next_token: Next = None, match_version: MatchVersion = None,
               match_spec: MatchSpec = None) -> Response:
    _check_collection(collection_id)
    query = _query(added_after=added_after, ids=[], types=[], versions=_split(match_version),
                   spec_versions=_split(match_spec), next_token=next_token, object_id=object_id)
    rows, more, token = _page(request, query, limit)
    if not rows and not next_token and not added_after and not _exists(request, object_id):
        raise TaxiiError(404, "Object not found", f"no object {object_id[:100]!r} in this collection")
    return taxii_response(_envelope(rows, more, token), headers=_headers(rows))


def _exists(request: Request, object_id: str) -> bool:
    with request.app.state.services.engine.connect() as connection:
        return connection.execute(select(OBJECTS.c.id).where(OBJECTS.c.stix_id == object_id).limit(1)).first() \
            is not None


@router.get("/api/collections/{collection_id}/objects/{object_id}/versions/")
def versions(collection_id: str, object_id: str, request: Request, _: Reader, added_after: AddedAfter = None,
             limit: Limit = None, next_token: Next = None, match_spec: MatchSpec = None) -> Response:
    _check_collection(collection_id)
    query = _query(added_after=added_after, ids=[], types=[], versions=["all"], spec_versions=_split(match_spec),
                   next_token=next_token, object_id=object_id)
    rows, more, token = _page(request, query, limit)
    if not rows and not next_token and not added_after and not _exists(request, object_id):
        raise TaxiiError(404, "Object not found", f"no object {object_id[:100]!r} in this collection")
    body: dict[str, Any] = {"more": more}
    if token:
        body["next"] = token
    if rows:
        body["versions"] = [stix_time(r.version) for r in rows]
    return taxii_response(body, headers=_headers(rows))


@router.get("/api/collections/{collection_id}/manifest/")
def manifest(collection_id: str, request: Request, _: Reader, added_after: AddedAfter = None, limit: Limit = None,
             next_token: Next = None, match_id: MatchId = None, match_type: MatchType = None,
             match_version: MatchVersion = None, match_spec: MatchSpec = None) -> Response:
    _check_collection(collection_id)
    query = _query(added_after=added_after, ids=_split(match_id), types=_split(match_type),
                   versions=_split(match_version), spec_versions=_split(match_spec), next_token=next_token)
    rows, more, token = _page(request, query, limit)
    body: dict[str, Any] = {"more": more}
    if token:
        body["next"] = token
    if rows:
        body["objects"] = [{"id": r.stix_id, "date_added": stix_time(r.date_added), "version": stix_time(r.version),
                            "media_type": STIX_MEDIA_TYPE} for r in rows]
    return taxii_response(body, headers=_headers(rows))

