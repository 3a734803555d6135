"""Webhooks: every event as a signed JSON POST, retried with backoff from the durable outbox.

    POST <url>
    Content-Type: application/json
    X-Mailwarden-Event: indicator.upserted
    X-Mailwarden-Delivery: 42                      (the delivery id; the same on every retry)
    X-Mailwarden-Timestamp: 1767225600             (Unix seconds when this attempt was signed)
    X-Mailwarden-Signature: sha256=<hex>           (HMAC-SHA256 over "<timestamp>.<body>" with the secret)

    {"id": 1234, "type": "indicator.upserted", "created_at": "...", "data": {...}}

A receiver recomputes the HMAC over the timestamp, a dot and the raw body, compares in constant time and
refuses timestamps more than a few minutes old (``verify`` does all three). Any 2xx is a delivery; anything
else (or no answer within ``timeout``) is retried later (``outbox.finish``), until the delivery is dead.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

import httpx
from sqlalchemy import Engine

from mailwarden import __version__
from mailwarden.intel import outbox
from mailwarden.intel.settings import WebhookSettings

log = logging.getLogger("mailwarden.intel.webhooks")
SIGNATURE_HEADER = "X-Mailwarden-Signature"
TIMESTAMP_HEADER = "X-Mailwarden-Timestamp"
TOLERANCE = 300  # seconds a signed timestamp stays acceptable


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, str(timestamp).encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def verify(secret: bytes, timestamp: str, body: bytes, signature: str, now: float,
           tolerance: float = TOLERANCE) -> bool:
    """What a receiver checks: the signature over timestamp and body, and a fresh timestamp."""
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)


def body_of(event: dict[str, object]) -> bytes:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


async def deliver_one(client: httpx.AsyncClient, webhook: WebhookSettings, secret: bytes,
                      delivery: outbox.Delivery, now: datetime) -> tuple[bool, int | None, str]:
    """One attempt: (delivered?, HTTP status, error)."""
    body = body_of(delivery.event)
    timestamp = int(now.timestamp())
    headers = {"Content-Type": "application/json", "User-Agent": f"Mailwarden/{__version__}",
               "X-Mailwarden-Event": str(delivery.event["type"]), "X-Mailwarden-Delivery": str(delivery.id),
               TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(secret, timestamp, body)}
    try:
        response = await client.post(webhook.url, content=body, headers=headers, timeout=webhook.timeout)
    except httpx.HTTPError as exc:
        return False, None, f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= response.status_code < 300:
        return True, response.status_code, ""
    return False, response.status_code, f"HTTP {response.status_code}"


async def run_webhooks(engine: Engine, webhooks: Sequence[WebhookSettings], now: Callable[[], datetime],
                       client: httpx.AsyncClient | None = None) -> dict[str, int]:
    """One round: new events become deliveries, due deliveries are attempted. Returns counts by outcome."""
    counts = {"delivered": 0, "pending": 0, "dead": 0}
    if not webhooks:
        return counts
    by_sink = {w.sink: w for w in webhooks}
    for webhook in webhooks:
        await asyncio.to_thread(outbox.dispatch, engine, webhook, now())
    own = client or httpx.AsyncClient(follow_redirects=False)
    try:
        while True:
            due = await asyncio.to_thread(outbox.claim, engine, by_sink, now())
            if not due:
                break
            results = await asyncio.gather(*(_attempt(engine, own, by_sink[d.sink], d, now) for d in due))
            for state in results:
                counts[state] = counts.get(state, 0) + 1
            if all(state != "delivered" for state in results):
                break  # everything due failed: the backoff decides when to try again
    finally:
        if client is None:
            await own.aclose()
    return counts


async def _attempt(engine: Engine, client: httpx.AsyncClient, webhook: WebhookSettings, delivery: outbox.Delivery,
                   now: Callable[[], datetime]) -> str:
    try:
        secret = webhook.secret()
    except Exception as exc:  # a missing secret is the operator's to fix; the delivery waits and retries
        ok, status, error = False, None, str(exc)
    else:
        ok, status, error = await deliver_one(client, webhook, secret, delivery, now())
    if not ok:
        log.warning("webhook %s: delivery %d of event %d failed: %s", webhook.name, delivery.id, delivery.event_id,
                    error)
    return await asyncio.to_thread(outbox.finish, engine, delivery, ok=ok, status=status, error=error,
                                   webhook=webhook, now=now())
