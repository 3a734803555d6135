"""serve records lookalikes of our own and partner domains used in threatening mail, with the watch's state."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

from mailwarden.config import load_org
from mailwarden.domains.watch import stored_lookalikes
from mailwarden.gateway.server import Gateway, open_engine
from mailwarden.gateway.settings import GatewaySettings
from mailwarden.message import parse
from mailwarden.pipeline import Context, scan

SCENARIOS = Path(__file__).resolve().parents[2].parent / "shared" / "scenarios"


def test_a_quarantined_lookalike_of_our_domain_is_recorded(tmp_path: Path) -> None:
    org = load_org(SCENARIOS / "org.toml")
    url = f"sqlite:///{tmp_path / 'mw.db'}"
    engine = open_engine(url)
    gateway = Gateway(settings=GatewaySettings(relay="127.0.0.1:9"), org=org, data_dir=tmp_path, database_url=url)
    message = parse((SCENARIOS / "messages" / "msg-002.eml").read_bytes(), authserv_id=org.authserv_id)
    decision = SimpleNamespace(result=scan(message, Context.for_org(org)))

    async def run() -> None:
        hook = gateway._threat_hook(engine, asyncio.get_running_loop())
        hook(None, decision, None)  # type: ignore[arg-type]
        await asyncio.sleep(0)
        await asyncio.gather(*gateway._tasks)

    asyncio.run(run())
    domains = {row["domain"] for row in stored_lookalikes(engine)}
    assert "marlowfenvvick.co.uk" in domains
    engine.dispose()
