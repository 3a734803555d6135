"""Helpers of the gateway tests: the zone, the downstream recorder, the gateway in a thread of its own."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from auth.dnsserver import Record

from mailwarden.config import OrgConfig, Partner
from mailwarden.gateway.server import Gateway
from mailwarden.gateway.settings import GatewaySettings

OWN = "acme.gw.test"
AUTHSERV_ID = "mx.acme.gw.test"


def zone_records() -> list[Record]:
    def txt(name: str, text: str) -> Record:
        return (name, 300, "TXT", text)

    return [
        txt("good.gw.test", "v=spf1 ip4:127.0.0.0/8 -all"),
        txt("_dmarc.good.gw.test", "v=DMARC1; p=none"),
        txt("bank.gw.test", "v=spf1 ip4:192.0.2.0/24 -all"),
        txt("_dmarc.bank.gw.test", "v=DMARC1; p=reject"),
        txt("globex.gw.test", "v=spf1 ip4:127.0.0.0/8 -all"),
        txt("_dmarc.globex.gw.test", "v=DMARC1; p=quarantine"),
        txt("acme.gw.test", "v=spf1 ip4:192.0.2.0/24 -all"),
        txt("_dmarc.acme.gw.test", "v=DMARC1; p=quarantine"),
        txt("promo.gw.test", "v=spf1 ip4:127.0.0.0/8 -all"),
    ]


# --- the downstream server -------------------------------------------------------------------------

@dataclass
class Delivered:
    mail_from: str
    recipients: list[str]
    data: bytes


@dataclass
class Recorder:
    """An aiosmtpd handler that keeps what it accepts; ``refuse`` maps recipients to replies."""

    messages: list[Delivered] = field(default_factory=list)
    seen: list[bytes] = field(default_factory=list)  # the data of every DATA, refused ones too
    refuse: dict[str, str] = field(default_factory=dict)
    fail_data: list[str] = field(default_factory=list)  # replies for the next DATAs, then accept
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            self.seen.append(envelope.original_content or b"")
            if self.fail_data:
                return self.fail_data.pop(0)
            self.messages.append(Delivered(envelope.mail_from or "", list(envelope.rcpt_tos),
                                           envelope.original_content or b""))
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Delivered]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} delivered messages, got {len(self.messages)}")


class LongLineSMTP(SMTP):
    line_length_limit = 1 << 24  # a next hop like Postfix takes long lines


class Downstream(Controller):
    def factory(self) -> SMTP:
        return LongLineSMTP(self.handler, **self.SMTP_kwargs)


# --- the gateway -------------------------------------------------------------------------------------

# The gateway tests need one message per action, not the packaged tuning: their own thresholds keep
# ``gwmail.warned()`` (a partner's name from a domain without DMARC: 45 since auth.no_dmarc_policy weighs
# 15) a warning and ``quarantined()`` (50 and more) held, whatever the weights become.
SCORING = {"thresholds": {"warn": 30, "quarantine": 50, "reject": 80}}


def org_config() -> OrgConfig:
    return OrgConfig(name="Acme", domains=(OWN,), authserv_id=AUTHSERV_ID,
                     partners=(Partner("Globex Logistics", ("globex.gw.test",)),), scoring=SCORING)


def gateway_settings(relay_port: int, **changes: Any) -> GatewaySettings:
    settings = GatewaySettings(smtp_listen="127.0.0.1:0", http_listen="127.0.0.1:0", relay=f"127.0.0.1:{relay_port}",
                               hostname=AUTHSERV_ID, node_id="test-node", retry_base=0.2, retry_max=1.0,
                               poll_interval=0.1, shutdown_grace=5.0, smtp_timeout=30.0, greet_pause=0.05,
                               learn_batch=1, learn_interval=0.2)
    return replace(settings, **changes)


class RunningGateway:
    """A Gateway on its own event loop in a thread, so tests can talk to it with blocking clients."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="gateway-loop", daemon=True)

    def call(self, coroutine: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def start(self) -> RunningGateway:
        self.thread.start()
        self.call(self.gateway.start())
        return self

    def stop(self) -> None:
        try:
            self.call(self.gateway.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()

    @property
    def smtp_port(self) -> int:
        return self.gateway.smtp_port

    @property
    def http_port(self) -> int:
        return self.gateway.http_port

    @property
    def engine(self) -> Any:
        return self.gateway.engine


GatewayFactory = Callable[..., RunningGateway]
