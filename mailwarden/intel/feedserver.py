"""``/feeds/``: the feeds of ``mailwarden.intel.feeds`` over HTTP, for firewalls, DNS servers and MISP.

    GET /feeds/domains.txt  /feeds/urls.txt  /feeds/ips.txt      EDL lists (``?scheme=keep`` keeps URL schemes)
    GET /feeds/rpz.zone                                          the RPZ zone (its serial rises with each change)
    GET /feeds/misp/manifest.json  /feeds/misp/<uuid>.json  /feeds/misp/hashes.csv
    GET /feeds/indicators.csv
    GET /feeds/stix.json                                         a STIX 2.1 bundle of the indicators in force

Each takes ``?min_confidence=`` (default ``[intel] min_confidence``) and the API key as a bearer token or
as the password of HTTP basic auth (scope ``intel:read``). Answers carry an ``ETag`` (a hash of the body)
and ``Last-Modified`` (when that body first appeared); ``If-None-Match`` or ``If-Modified-Since`` that
still hold get 304 with no body. A rendered feed is cached for up to ``CACHE_SECONDS`` while no indicator
changed, so expiry shows within that time.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy import Engine, func, select, update

from mailwarden.api.keys import ApiKey
from mailwarden.api.problems import Problem
from mailwarden.intel import feeds, stix
from mailwarden.intel.indicators import stable_uuid
from mailwarden.intel.store import INDICATORS, STATE, _insert
from mailwarden.intel.web import READ, IntelContext, Refused, intel_context, require_feed_key
from mailwarden.store.db import begin_write

CACHE_SECONDS = 30.0
TEXT = "text/plain; charset=utf-8"
_PROBLEM = {"description": "A problem document (RFC 9457)", "content": {"application/problem+json": {}}}


def documented(media_type: str) -> dict[int | str, dict[str, Any]]:
    """The answers a feed route gives, for the OpenAPI document."""
    kind = "object" if media_type.endswith("json") else "string"
    return {200: {"description": "The feed", "content": {media_type: {"schema": {"type": kind}}}},
            304: {"description": "Not modified since If-None-Match or If-Modified-Since"},
            **{status: _PROBLEM for status in (401, 403, 404, 422, 429)}}


TEXT_FEED, CSV_FEED = documented("text/plain"), documented("text/csv")
JSON_FEED, STIX_FEED = documented("application/json"), documented("application/stix+json")


router = APIRouter(prefix="/feeds", tags=["feeds"])
MinConfidence = Annotated[int | None, Query(ge=0, le=100, description="Only indicators at least this confident "
                                                                      "now (default [intel] min_confidence)")]


def _reader(request: Request) -> ApiKey:
    try:
        return require_feed_key(READ)(request, *_credentials(request))
    except Refused as exc:
        raise Problem(exc.status, exc.detail, headers=exc.headers, **exc.extensions) from exc


def _credentials(request: Request) -> tuple[Any, Any]:
    from fastapi.security import HTTPAuthorizationCredentials

    from mailwarden.intel.web import _basic_from

    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return HTTPAuthorizationCredentials(scheme="Bearer", credentials=value.strip()), None
    if scheme.lower() == "basic" and value.strip():
        return None, _basic_from(value.strip())
    return None, None


Reader = Annotated[ApiKey, Depends(_reader)]


def _data_version(engine: Engine) -> tuple[Any, ...]:
    with engine.connect() as connection:
        row = connection.execute(select(func.max(INDICATORS.c.modified_at), func.max(INDICATORS.c.id))).first()
    return tuple(row) if row is not None else ()


def _rows(request: Request, min_confidence: int) -> list[dict[str, Any]]:
    context = intel_context(request)
    services = request.app.state.services
    return feeds.published(services.engine, now=services.clock(), allow=context.allow, min_confidence=min_confidence)


def _state(engine: Engine, name: str, digest: str, now: datetime) -> tuple[int, datetime]:
    """The feed's serial and the time its content last changed, moved on when ``digest`` is new."""
    with begin_write(engine) as connection:
        row = connection.execute(select(STATE).where(STATE.c.name == name)).first()
        if row is not None and row.text == digest:
            return int(row.number), row.changed_at
        moment = now.replace(microsecond=0)
        if row is None:
            statement = _insert(connection, STATE).values(name=name, number=1, text=digest, changed_at=moment)
            connection.execute(statement.on_conflict_do_nothing(index_elements=["name"]))
            return 1, moment
        serial = max(int(row.number) + 1, 1)
        connection.execute(update(STATE).where(STATE.c.name == name).values(number=serial, text=digest,
                                                                            changed_at=moment))
        return serial, moment


def _serve(request: Request, name: str, media_type: str, min_confidence: int | None,
           render: Callable[[IntelContext, list[dict[str, Any]]], str],
           finish: Callable[[str, int], str] | None = None) -> Response:
    """Render (or reuse) a feed and answer it with ETag and Last-Modified, or 304."""
    context = intel_context(request)
    engine: Engine = request.app.state.services.engine
    threshold = context.settings.min_confidence if min_confidence is None else min_confidence
    cache_key = (name, threshold)
    version = _data_version(engine)
    with context.cache_lock:
        cached = context.cache.get(cache_key)
    if cached is not None and cached[0] == version and cached[1] > time.monotonic():
        body, digest = cached[2], cached[3]
    else:
        body = render(context, _rows(request, threshold))
        digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
        with context.cache_lock:
            if len(context.cache) > 256:
                context.cache.clear()
            context.cache[cache_key] = (version, time.monotonic() + CACHE_SECONDS, body, digest)
    serial, changed = _state(engine, f"feed:{name}:{threshold}", digest, datetime.now(UTC))
    text = finish(body, serial) if finish is not None else body
    etag = f'"{hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]}"'
    headers = {"ETag": etag, "Last-Modified": format_datetime(changed, usegmt=True), "Cache-Control": "no-cache"}
    if _not_modified(request, etag, changed):
        return Response(status_code=304, headers=headers)
    return Response(text, media_type=media_type, headers=headers)


def _not_modified(request: Request, etag: str, changed: datetime) -> bool:
    match = request.headers.get("if-none-match")
    if match is not None:
        tags = {t.strip().removeprefix("W/") for t in match.split(",")}
        return "*" in tags or etag in tags
    since = request.headers.get("if-modified-since")
    if since:
        try:
            moment = parsedate_to_datetime(since)
        except (TypeError, ValueError, IndexError):
            return False
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return changed <= moment
    return False


@router.get("/domains.txt", responses=TEXT_FEED,
            summary="Domains to block, one per line (EDL)", response_class=Response)
def domains(request: Request, _: Reader, min_confidence: MinConfidence = None) -> Response:
    return _serve(request, "domains.txt", TEXT, min_confidence, lambda c, rows: feeds.edl(rows, "domain"))


@router.get("/urls.txt", responses=TEXT_FEED,
            summary="URLs to block, one per line, without scheme unless scheme=keep (EDL)",
            response_class=Response)
def urls(request: Request, _: Reader, min_confidence: MinConfidence = None,
         scheme: Annotated[str | None, Query(pattern="^(keep|drop)$")] = None) -> Response:
    keep = scheme == "keep"
    return _serve(request, f"urls.txt{'+scheme' if keep else ''}", TEXT, min_confidence,
                  lambda c, rows: feeds.edl(rows, "url", keep_scheme=keep))


@router.get("/ips.txt", responses=TEXT_FEED,
            summary="IPv4 and IPv6 addresses to block, one per line (EDL)", response_class=Response)
def ips(request: Request, _: Reader, min_confidence: MinConfidence = None) -> Response:
    return _serve(request, "ips.txt", TEXT, min_confidence, lambda c, rows: feeds.edl(rows, "ip"))


@router.get("/rpz.zone", responses=TEXT_FEED,
            summary="A DNS response policy zone (RPZ) answering NXDOMAIN for blocked domains",
            response_class=Response)
def rpz_zone(request: Request, _: Reader, min_confidence: MinConfidence = None) -> Response:
    zone = intel_context(request).settings.rpz_zone
    return _serve(request, "rpz.zone", TEXT, min_confidence, lambda c, rows: feeds.rpz_body(rows, zone),
                  lambda body, serial: feeds.rpz(body, zone, serial))


def _misp(context: IntelContext, rows: list[dict[str, Any]]) -> str:
    feed = feeds.misp_feed(rows, context.producer)
    return json.dumps({"manifest": feed.manifest, "events": feed.events, "hashes": feed.hashes}, sort_keys=True)


def _misp_part(part: Callable[[dict[str, Any]], Any]) -> Callable[[str, int], str]:
    def finish(body: str, serial: int) -> str:
        found = part(json.loads(body))
        return found if isinstance(found, str) else json.dumps(found, indent=1, sort_keys=True)
    return finish


@router.get("/misp/manifest.json", responses=JSON_FEED, summary="The MISP feed's manifest", response_class=Response)
def misp_manifest(request: Request, _: Reader, min_confidence: MinConfidence = None) -> Response:
    return _serve(request, "misp", "application/json", min_confidence, _misp, _misp_part(lambda f: f["manifest"]))


@router.get("/misp/hashes.csv", responses=CSV_FEED, summary="The MISP feed's attribute hashes", response_class=Response)
def misp_hashes(request: Request, _: Reader, min_confidence: MinConfidence = None) -> Response:
    return _serve(request, "misp", "text/csv; charset=utf-8", min_confidence, _misp, _misp_part(lambda f: f["hashes"]))


@router.get("/misp/{event_file}", responses=JSON_FEED,
            summary="One MISP feed event (<uuid>.json)", response_class=Response)
def misp_event(event_file: str, request: Request, _: Reader, min_confidence: MinConfidence = None) -> Response:
    event_uuid = event_file.removesuffix(".json")
    if not event_file.endswith(".json"):
        raise Problem(404, f"no feed file {event_file[:80]!r}")

    def pick(feed: dict[str, Any]) -> Any:
        return feed["events"].get(event_uuid) or {}

    response = _serve(request, "misp", "application/json", min_confidence, _misp, _misp_part(pick))
    if response.status_code == 200 and response.body in (b"{}", b""):
        raise Problem(404, f"no MISP event {event_uuid[:80]!r} in this feed")
    return response


@router.get("/indicators.csv", responses=CSV_FEED, summary="Every indicator in force as CSV", response_class=Response)
def indicators_csv(request: Request, _: Reader, min_confidence: MinConfidence = None) -> Response:
    return _serve(request, "indicators.csv", "text/csv; charset=utf-8", min_confidence,
                  lambda c, rows: feeds.indicators_csv(rows))


@router.get("/stix.json", responses=STIX_FEED,
            summary="A STIX 2.1 bundle of the indicators in force", response_class=Response)
def stix_bundle(request: Request, _: Reader, min_confidence: MinConfidence = None) -> Response:
    def render(context: IntelContext, rows: list[dict[str, Any]]) -> str:
        creator = stix.identity_id(context.producer)
        objects = [stix.identity_object(context.producer), *(stix.indicator_object(r, creator) for r in rows)]
        return json.dumps(objects, sort_keys=True)

    def finish(body: str, serial: int) -> str:
        digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
        return json.dumps(stix.bundle(json.loads(body), bundle_id=f"bundle--{stable_uuid('bundle', digest)}"))

    return _serve(request, "stix.json", stix.STIX_MEDIA_TYPE, min_confidence, render, finish)
