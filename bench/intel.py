"""Indicator search and TAXII objects under load: p50/p99 latency and throughput with 100,000 indicators stored.

    python3 bench/intel.py                     # SQLite and PostgreSQL, 100,000 indicators, 10 s per endpoint
    python3 bench/intel.py --quick             # 20,000 indicators, 5 s per endpoint
    python3 bench/intel.py --databases sqlite  # one database only

The store is filled in batches (indicator rows and their first STIX version, built with ``stix2`` as the store
builds them), the API app is served by uvicorn (one worker process, as ``serve`` runs it) on 127.0.0.1, and
``wrk`` (Debian's package) loads it from another process: 2 threads, 16 connections, an admin key as a bearer
token. Endpoints:

* ``GET /api/v1/indicators?type=domain&limit=50``              the newest page of one type
* ``GET /api/v1/indicators?value=bad77777.example&type=domain`` an exact lookup (what a SOAR asks)
* ``GET /taxii2/api/collections/<id>/objects/?limit=100``        the first page of the collection
* ``GET /taxii2/.../objects/?limit=100&added_after=<middle>``    a page in the middle (a client catching up)

PostgreSQL is the server on 127.0.0.1:5432 (database ``test``), in a schema of its own, dropped afterwards.
Prints one Markdown table.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "intel"))
sys.path.insert(0, str(ROOT / "tests"))

from intelharness import LiveServer, build_app  # noqa: E402
from sqlalchemy import Engine, insert  # noqa: E402

from mailwarden.api.keys import create_key  # noqa: E402
from mailwarden.gateway.server import open_engine  # noqa: E402
from mailwarden.intel import stix  # noqa: E402
from mailwarden.intel.indicators import stix_id  # noqa: E402
from mailwarden.intel.settings import IntelSettings  # noqa: E402
from mailwarden.intel.store import INDICATORS  # noqa: E402
from mailwarden.intel.taxii import COLLECTION_ID  # noqa: E402

BATCH = 2000


def fill(engine: Engine, count: int) -> tuple[float, str]:
    """Store ``count`` domain indicators with their STIX versions; returns (seconds, the middle date_added)."""
    start = time.perf_counter()
    base = datetime.now(UTC) - timedelta(days=1)
    creator = stix.identity_id("Acme Corp")
    middle = ""
    with engine.begin() as connection:
        stix.add_once(connection, stix.identity_object("Acme Corp"), base)
    for first in range(0, count, BATCH):
        rows, objects = [], []
        for i in range(first, min(count, first + BATCH)):
            when = stix.millis(base + timedelta(milliseconds=i))
            value = f"bad{i}.example"
            rows.append({"id": i + 1, "stix_id": stix_id("domain", value), "type": "domain", "value": value,
                         "confidence": 50 + i % 50, "severity": "medium", "action": "block" if i % 2 else "monitor",
                         "source": "bench", "tags": ["bench"], "description": "", "first_seen": when,
                         "last_seen": when, "valid_from": when, "valid_until": when + timedelta(days=90),
                         "revoked": False, "revoked_reason": "", "sightings": 0, "created_at": when,
                         "modified_at": when})
        for row in rows:
            obj = stix.indicator_object(row, creator)
            objects.append({"stix_id": obj["id"], "type": "indicator", "version": row["modified_at"],
                            "date_added": row["modified_at"], "indicator_id": row["id"], "object": obj})
        with engine.begin() as connection:
            connection.execute(insert(INDICATORS), rows)
            connection.execute(insert(stix.OBJECTS), objects)
        if not middle and first + BATCH >= count // 2:
            middle = stix.stix_time(rows[0]["modified_at"])
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.exec_driver_sql("SELECT setval(pg_get_serial_sequence('intel_indicators', 'id'), "
                                       f"{count + 1})")
            connection.exec_driver_sql("ANALYZE")
    return time.perf_counter() - start, middle


def wrk(url: str, token: str, seconds: int) -> dict[str, Any]:
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", "-H",
                          f"Authorization: Bearer {token}", url], capture_output=True, text=True, check=True).stdout

    def latency(label: str) -> float:
        found = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        if found is None:
            return float("nan")
        value, unit = float(found.group(1)), found.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"p50": latency("50"), "p99": latency("99"), "rps": float(rate.group(1)) if rate else float("nan"),
            "errors": int(errors.group(1)) if errors else 0}


def postgres_url() -> tuple[str, str, str] | None:
    import psycopg

    for user in ("postgres", "root"):
        try:
            with psycopg.connect(host="127.0.0.1", dbname="test", user=user, autocommit=True,
                                 connect_timeout=5) as admin:
                schema = f"mwbench_{uuid.uuid4().hex[:10]}"
                admin.execute(f'CREATE SCHEMA "{schema}"')
                return (f"postgresql://{user}@127.0.0.1:5432/test?options=-csearch_path%3D{schema}", user, schema)
        except psycopg.Error:
            continue
    return None


def drop_schema(user: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(host="127.0.0.1", dbname="test", user=user, autocommit=True) as admin:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def measure(name: str, url: str, count: int, seconds: int) -> list[str]:
    engine = open_engine(url)
    try:
        filled, middle = fill(engine, count)
        token = create_key(engine, name="bench", scopes=["admin"], now=datetime.now(UTC))
        with tempfile.TemporaryDirectory() as data:
            app, _, _ = build_app(engine, Path(data), IntelSettings(api_rate=1e6, api_burst=1_000_000))
            with LiveServer(app) as live:
                objects = f"{live.url}/taxii2/api/collections/{COLLECTION_ID}/objects/?limit=100"
                endpoints = [
                    ("indicators, newest page", f"{live.url}/api/v1/indicators?type=domain&limit=50"),
                    ("indicators, exact value", f"{live.url}/api/v1/indicators?type=domain&value=bad{count - 7}"
                                                ".example"),
                    ("TAXII objects, first page", objects),
                    ("TAXII objects, added_after", f"{objects}&added_after={middle}"),
                ]
                lines = []
                for label, target in endpoints:
                    result = wrk(target, token, seconds)
                    lines.append(f"| {name} | {label} | {result['p50']:.1f} | {result['p99']:.1f} | "
                                 f"{result['rps']:.0f} | {result['errors']} |")
        print(f"{name}: filled {count:,} indicators in {filled:.1f} s", file=sys.stderr)
        return lines
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    count, seconds = (20_000, 5) if args.quick else (100_000, 10)
    lines = ["| database | endpoint | p50 ms | p99 ms | requests/s | non-2xx |", "|---|---|---|---|---|---|"]
    for name in args.databases.split(","):
        if name == "sqlite":
            with tempfile.TemporaryDirectory() as directory:
                lines += measure("SQLite", f"sqlite:///{directory}/mw.db", count, seconds)
        elif name == "postgresql":
            found = postgres_url()
            if found is None:
                print("PostgreSQL not reachable on 127.0.0.1:5432: skipped", file=sys.stderr)
                continue
            url, user, schema = found
            try:
                lines += measure("PostgreSQL", url, count, seconds)
            finally:
                drop_schema(user, schema)
    print(f"{count:,} indicators stored; wrk -t2 -c16 -d{seconds}s on {os.cpu_count()} cores\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
