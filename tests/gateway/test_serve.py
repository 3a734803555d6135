"""``mailwarden serve`` as an operator runs it: a subprocess, configured by file, flags and environment,
answering SMTP and HTTP, stopped with SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from auth.dnsserver import free_port
from gwharness import AUTHSERV_ID, OWN, Recorder
from gwmail import clean, quarantined, send
from typer.testing import CliRunner

from mailwarden.cli import app


def _wait_for_port(port: int, process: subprocess.Popen[bytes], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stderr.read() if process.stderr else b""
            raise AssertionError(f"serve exited with {process.returncode}: {output!r}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


def test_serve_runs_smtp_api_and_delivery_and_stops_on_sigterm(tmp_path: Path, sqlite_url: str, gw_dns: str,
                                                               downstream: Recorder, downstream_port: int) -> None:
    config = tmp_path / "org.toml"
    config.write_text(f"""
[organization]
name = "Acme"
domains = ["{OWN}"]
authserv_id = "{AUTHSERV_ID}"

[[partners]]
name = "Globex Logistics"
domains = ["globex.gw.test"]

[dns]
resolvers = ["{gw_dns}"]
timeout = 1.0

[gateway]
hostname = "{AUTHSERV_ID}"
poll_interval = 0.1
retry_base = 0.2
""", encoding="utf-8")
    data_dir = tmp_path / "data"
    env = {**os.environ, "MAILWARDEN_DATABASE_URL": sqlite_url, "MAILWARDEN_RELAY": f"127.0.0.1:{downstream_port}"}
    env.pop("MAILWARDEN_RESOLVER", None)
    result = CliRunner(env={"MAILWARDEN_DATABASE_URL": sqlite_url}).invoke(
        app, ["--data-dir", str(data_dir), "apikey", "create", "--scope", "quarantine:read", "--name", "soc"])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("mwk_") and " " not in key

    smtp_port, http_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mailwarden.cli", "--data-dir", str(data_dir), "serve", "--config", str(config),
         "--smtp-listen", f"127.0.0.1:{smtp_port}", "--http-listen", f"127.0.0.1:{http_port}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for_port(smtp_port, process)
        _wait_for_port(http_port, process)
        assert send(smtp_port, "alice@good.gw.test", clean())[0] == 250
        assert send(smtp_port, "info@promo.gw.test", quarantined())[0] == 250
        assert downstream.wait_for(1)[0].recipients == ["bob@acme.gw.test"]
        base = f"http://127.0.0.1:{http_port}"
        assert httpx.get(f"{base}/api/v1/quarantine").status_code == 401
        listed = httpx.get(f"{base}/api/v1/quarantine", headers={"Authorization": f"Bearer {key}"}).json()
        assert [item["message_id"] for item in listed["items"]] == ["<q1@promo.gw.test>"]
        assert "/api/v1/logs/releases" in httpx.get(f"{base}/openapi.json").json()["paths"]
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr.decode(errors="replace")
    assert b"stopped" in stderr
