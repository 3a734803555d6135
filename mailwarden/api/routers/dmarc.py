"""``/api/v1/dmarc``: upload reports, and what the stored reports say; ``/api/v1/logs/dmarc-alerts``.

    POST /dmarc/reports            a report as the request body: aggregate XML, SMTP TLS JSON, gzip, zip, or
                                   a whole email carrying any of them or a failure report (scope dmarc:write)
    GET  /dmarc/summary?by=        per domain, org_name, source_ip_address, source_network or header_from
    GET  /dmarc/sources            top failing sources (most DMARC-failing messages first)
    GET  /dmarc/senders            who sends as us: every source IP, authorised, mixed or unknown
    GET  /dmarc/alerts             new unauthorised sources, failure jumps, spoof evidence (newest first)
    GET  /dmarc/posture?domain=    the last stored DNS posture of own and partner domains
    GET  /logs/dmarc-alerts        the alerts again, next to the Rejection and Release Logs (scope read:logs)

Reading needs ``dmarc:read``. Uploads are idempotent: a report already stored is a duplicate (200; 201
when something new was stored). Input that holds no readable report is a 422 problem whose ``detail`` is
the parser's error (``errors`` lists each part's), and it is kept aside like any bad input.

Field names follow parsedmarc's where the concept is the same: ``count`` (messages), ``org_name``,
``source_ip_address``, ``header_from``, ``spf_aligned``/``dkim_aligned``/``dmarc_aligned`` (here: how many
messages were), ``disposition``. Lists that grow are cursor-paginated (``next_cursor``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from mailwarden.api.app import ApiServices, Services, require
from mailwarden.api.keys import ApiKey
from mailwarden.api.problems import Problem
from mailwarden.dmarc import queries
from mailwarden.gateway.paging import DEFAULT_LIMIT, MAX_LIMIT, CursorError

router = APIRouter(prefix="/dmarc", tags=["dmarc"])
logs_router = APIRouter(prefix="/logs", tags=["logs"])
Reader = Annotated[ApiKey, Depends(require("dmarc:read"))]
Writer = Annotated[ApiKey, Depends(require("dmarc:write"))]
LogReader = Annotated[ApiKey, Depends(require("read:logs"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Domain = Annotated[str | None, Query(description="Only this domain (and its subdomains' From domains).",
                                     max_length=253)]
Kind = Annotated[str | None, Query(pattern="^(" + "|".join(queries.ALERT_KINDS) + ")$")]
GROUPS: dict[str, queries.Grouping] = {"domain": "domain", "org_name": "org", "source_ip_address": "source_ip",
                                      "source_network": "network", "header_from": "header_from"}
UPLOAD_LIMIT = 64 * 1024 * 1024  # the parser's own bound on an email or archive read whole


# --- cursors over aggregates (offsets) and domains --------------------------------------------------------

def _encode(kind: str, value: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode().rstrip("=")


def _decode(cursor: str | None, kind: str) -> str | None:
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        text = ""
    found, sep, value = text.partition(":")
    if found != kind or not sep or (kind == "offset" and not value.isdigit()):
        raise Problem(400, f"invalid cursor {cursor[:40]!r}")
    return value


def _offset(cursor: str | None) -> int:
    return int(_decode(cursor, "offset") or 0)


def _page(items: list[dict[str, Any]], start: int, limit: int) -> dict[str, Any]:
    """``items`` holds one more than a page when there is a next one."""
    more = len(items) > limit
    return {"items": items[:limit], "next_cursor": _encode("offset", str(start + limit)) if more else None}


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise Problem(400, f"{name} needs a timezone (e.g. 2026-03-02T10:00:00Z)")
    return value


def _summary_dict(summary: queries.Summary, field: str) -> dict[str, Any]:
    return {field: summary.key, "count": summary.messages, "reports": summary.reports,
            "dmarc_aligned": summary.dmarc_pass, "dmarc_failed": summary.messages - summary.dmarc_pass,
            "spf_aligned": summary.spf_aligned, "dkim_aligned": summary.dkim_aligned,
            "spf_pass": summary.spf_pass, "dkim_pass": summary.dkim_pass,
            "disposition": {"none": summary.none, "quarantine": summary.quarantine, "reject": summary.reject},
            "rates": {"dmarc_aligned": summary.rate(summary.dmarc_pass),
                      "spf_aligned": summary.rate(summary.spf_aligned),
                      "dkim_aligned": summary.rate(summary.dkim_aligned), "spf_pass": summary.rate(summary.spf_pass),
                      "dkim_pass": summary.rate(summary.dkim_pass)}}


# --- upload -------------------------------------------------------------------------------------------------

async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > UPLOAD_LIMIT:
        raise Problem(413, f"the upload is larger than {UPLOAD_LIMIT} bytes (limit max_message_bytes)")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > UPLOAD_LIMIT:
            raise Problem(413, f"the upload is larger than {UPLOAD_LIMIT} bytes (limit max_message_bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def _ingest(services: ApiServices, raw: bytes, source: str) -> dict[str, Any]:
    from mailwarden.dmarc.ingest import DmarcIngest

    org = services.org
    store = DmarcIngest(services.engine, services.spool.directory.parent,
                        own_domains=org.domains if org is not None else (),
                        settings=org.dmarc if org is not None else None, clock=services.clock)
    result = store.ingest_bytes(raw, source)
    document = result.to_dict()
    document["kept_aside"] = result.kept_aside is not None  # where it is kept is the server's business
    return document


@router.post("/reports", summary="Store the reports in an uploaded file or email (idempotent)",
             responses={200: {"description": "every report in it was stored already"},
                        201: {"description": "at least one report was stored"},
                        413: {"description": "too large"}, 422: {"description": "no readable report"}},
             openapi_extra={"requestBody": {"required": True, "content": {
                 media: {"schema": {"type": "string", "format": "binary"}}
                 for media in ("application/xml", "application/json", "application/gzip", "application/zip",
                               "message/rfc822", "application/octet-stream")}}})
async def upload(request: Request, services: Services, key: Writer,
                 name: Annotated[str | None, Query(max_length=200, description="The file's name (kept with "
                                                   "the report as its source).")] = None) -> JSONResponse:
    raw = await _body(request)
    if not raw.strip():
        raise Problem(422, "empty upload: send the report (XML, JSON, gzip, zip or email) as the request body")
    source = f"api:{key.name}/{name or 'upload'}"
    result = await asyncio.to_thread(_ingest, services, raw, source)
    if not result["reports"]:
        errors = result["errors"]
        raise Problem(422, errors[0]["error"] if errors else "no report found", title="No readable report",
                      errors=errors, kept_aside=result["kept_aside"])
    return JSONResponse(result, status_code=201 if result["stored"] else 200)


# --- what the reports say ---------------------------------------------------------------------------------

@router.get("/summary", summary="Volumes, alignment, pass rates and dispositions per group, most messages first")
def summary(services: Services, _: Reader,
            by: Annotated[Literal["domain", "org_name", "source_ip_address", "source_network", "header_from"],
                          Query(description="What to group by.")] = "domain",
            domain: Domain = None, since: datetime | None = None, cursor: str | None = None,
            limit: Limit = DEFAULT_LIMIT) -> dict[str, Any]:
    start = _offset(cursor)
    found = queries.summary(services.engine, GROUPS[by], domain=domain, since=_aware(since, "since"),
                            limit=limit + 1, offset=start)
    return _page([_summary_dict(s, by) for s in found], start, limit)


@router.get("/sources", summary="Top failing sources: most DMARC-failing messages first")
def sources(services: Services, _: Reader, domain: Domain = None, since: datetime | None = None,
            cursor: str | None = None, limit: Limit = DEFAULT_LIMIT) -> dict[str, Any]:
    start = _offset(cursor)
    found = queries.top_failing_sources(services.engine, domain=domain, since=_aware(since, "since"),
                                        limit=limit + 1, offset=start)
    return _page([_summary_dict(s, "source_ip_address") for s in found], start, limit)


@router.get("/senders", summary="Who sends as us: each source IP, authorised, mixed or unknown")
def senders(services: Services, _: Reader, domain: Domain = None, since: datetime | None = None,
            status: Annotated[Literal["authorised", "mixed", "unknown"] | None, Query()] = None,
            cursor: str | None = None, limit: Limit = DEFAULT_LIMIT) -> dict[str, Any]:
    start = _offset(cursor)
    if status is None:
        found = queries.senders(services.engine, domain=domain, since=_aware(since, "since"), limit=limit + 1,
                                offset=start)
    else:  # the status is judged after summing, so the filter is applied here (pages stay full)
        found = [s for s in queries.senders(services.engine, domain=domain, since=_aware(since, "since"))
                 if s.status == status][start:start + limit + 1]
    items = [{"source_ip_address": s.source_ip, "source_network": s.network, "count": s.messages,
              "dmarc_aligned": s.dmarc_pass, "dmarc_failed": s.messages - s.dmarc_pass,
              "header_from": list(s.header_from), "reporters": s.reporters, "status": s.status} for s in found]
    return _page(items, start, limit)


def _alerts(services: ApiServices, domain: str | None, kind: str | None, since: datetime | None,
            until: datetime | None, cursor: str | None, limit: int) -> dict[str, Any]:
    try:
        return queries.alert_page(services.engine, domain=domain, kind=kind, since=_aware(since, "since"),
                                  until=_aware(until, "until"), cursor=cursor, limit=limit).to_dict()
    except CursorError as exc:
        raise Problem(400, str(exc)) from exc


@router.get("/alerts", summary="DMARC alerts, newest first")
def alerts(services: Services, _: Reader, domain: Domain = None, kind: Kind = None, since: datetime | None = None,
           until: datetime | None = None, cursor: str | None = None, limit: Limit = DEFAULT_LIMIT) -> dict[str, Any]:
    return _alerts(services, domain, kind, since, until, cursor, limit)


@logs_router.get("/dmarc-alerts", summary="DMARC alerts, newest first (next to the rejection and release logs)")
def dmarc_alerts(services: Services, _: LogReader, domain: Domain = None, kind: Kind = None,
                 since: datetime | None = None, until: datetime | None = None, cursor: str | None = None,
                 limit: Limit = DEFAULT_LIMIT) -> dict[str, Any]:
    return _alerts(services, domain, kind, since, until, cursor, limit)


# --- posture ------------------------------------------------------------------------------------------------

@router.get("/posture", summary="The DNS posture of own and partner domains (SPF, DMARC, DKIM, MTA-STS, TLS-RPT, MX)")
async def posture(services: Services, _: Reader,
                  domain: Annotated[str | None, Query(max_length=253, description="One domain (checked now "
                                                      "when none is stored and the gateway's DNS is at hand).")]
                  = None,
                  fresh: Annotated[bool, Query(description="Check the domain now rather than show the stored "
                                               "result (needs domain).")] = False,
                  cursor: str | None = None, limit: Limit = DEFAULT_LIMIT) -> dict[str, Any]:
    from mailwarden.dmarc.schedule import latest_postures

    if fresh and not domain:
        raise Problem(400, "fresh=true needs a domain")
    if domain is None:
        after = _decode(cursor, "domain")
        stored = await asyncio.to_thread(latest_postures, services.engine)
        names = sorted(d for d in stored if after is None or d > after)
        items = [_posture_item(stored[d]) for d in names[:limit]]
        more = len(names) > limit
        return {"items": items, "next_cursor": _encode("domain", names[limit - 1]) if more else None}
    name = domain.strip().lower().rstrip(".")
    found = None if fresh else (await asyncio.to_thread(latest_postures, services.engine, [name])).get(name)
    if found is not None:
        return {"items": [_posture_item(found)], "next_cursor": None}
    if services.resolver is None:
        raise Problem(404, f"no stored posture for {name}, and no DNS resolver to check it with")
    return {"items": [await asyncio.to_thread(_check_now, services, name)], "next_cursor": None}


def _posture_item(stored: dict[str, Any]) -> dict[str, Any]:
    return {**stored["posture"], "checked_at": stored["checked_at"], "changes": stored.get("changes", []),
            "stored": True}


def _check_now(services: ApiServices, name: str) -> dict[str, Any]:
    from mailwarden.dmarc.posture import Role, check_domains
    from mailwarden.dmarc.settings import default_settings

    assert services.resolver is not None
    org = services.org
    role: Role = "other"
    if org is not None and org.is_own_domain(name):
        role = "own"
    elif org is not None and org.partner_for_domain(name) is not None:
        role = "partner"
    settings = org.dmarc.posture if org is not None else default_settings().posture
    [result] = check_domains(services.resolver, [name], {name: role}, settings)
    return {**result.to_dict(), "checked_at": services.clock().isoformat(), "changes": [], "stored": False}
