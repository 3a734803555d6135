"""Fixtures for the gateway: a real DNS server (Knot) with the test domains' SPF and DMARC records, a real
downstream SMTP server (aiosmtpd) that records what it is relayed, and the gateway itself running in a
thread of its own (its asyncio loop) on free loopback ports, against the ``database_url`` databases.

Domains (zone ``gw.test``, see ``gwharness.zone_records``): ``acme.gw.test`` is ours; ``good.gw.test``
lets 127.0.0.0/8 send (SPF pass, DMARC p=none); ``bank.gw.test`` lets only 192.0.2.0/24 send and
publishes DMARC p=reject, so mail from loopback claiming it is a spoof; ``promo.gw.test`` lets loopback
send and publishes no DMARC policy.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from auth.dnsserver import KnotServer, free_port, knotd_path
from gwharness import Downstream, GatewayFactory, Recorder, RunningGateway, gateway_settings, org_config, zone_records

from mailwarden.config import OrgConfig
from mailwarden.dns import LiveResolver
from mailwarden.gateway.server import Gateway
from mailwarden.profiles import Profiles


@pytest.fixture(scope="session")
def gw_dns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if knotd_path() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("knotd is required in CI (scripts/test installs the knot package)")
        pytest.skip("knotd not installed (apt-get install knot)")
    with KnotServer(tmp_path_factory.mktemp("gw-knot"), {"gw.test": zone_records()}) as server:
        yield server.address


@pytest.fixture(scope="session")
def gw_resolver(gw_dns: str) -> Iterator[LiveResolver]:
    with LiveResolver(gw_dns, timeout=1.0) as live:
        yield live


@pytest.fixture(autouse=True)
def _no_resolver_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAILWARDEN_RESOLVER", raising=False)


@pytest.fixture
def downstream_port() -> int:
    return free_port()


@pytest.fixture
def downstream(downstream_port: int) -> Iterator[Recorder]:
    """The next hop, recording what it accepts."""
    recorder = Recorder()
    controller = Downstream(recorder, hostname="127.0.0.1", port=downstream_port, server_hostname="next-hop.test")
    controller.start()
    try:
        yield recorder
    finally:
        controller.stop()


@pytest.fixture
def start_gateway(tmp_path: Path, database_url: str, gw_resolver: LiveResolver,
                  downstream_port: int) -> Iterator[GatewayFactory]:
    """Start gateways (stopped at the end); keyword arguments change the settings. A test that also wants
    ``downstream`` names it first, so that the next hop stops after the gateways (not under a delivery)."""
    running: list[RunningGateway] = []

    def start(org: OrgConfig | None = None, **changes: Any) -> RunningGateway:
        gateway = Gateway(settings=gateway_settings(downstream_port, **changes), org=org or org_config(),
                          data_dir=tmp_path / "data", database_url=database_url, resolver=gw_resolver,
                          profiles=Profiles())
        started = RunningGateway(gateway).start()
        running.append(started)
        return started

    yield start
    for gateway in running:
        if gateway.thread.is_alive():
            gateway.stop()


@pytest.fixture
def gateway(downstream: Recorder, start_gateway: GatewayFactory) -> RunningGateway:
    return start_gateway()
