"""The SMTP gateway under load: sustained accepted messages/s (scan included) and SMTP transaction latency,
next to Postfix's ``smtp-source`` -> ``smtp-sink`` on the same machine as the reference floor.

    python3 bench/gateway.py              # 5,000 messages per run
    python3 bench/gateway.py --quick      # 1,000 messages per run
    python3 bench/gateway.py --no-loss    # also 10,000 messages, 20 clients, steady and with 3 SIGKILLs

Everything runs on this machine, on loopback: Knot DNS with the gateway tests' zone (SPF and DMARC pass for
the senders), ``mailwarden serve`` as a subprocess pinned to 2 cores (``taskset -c 0,1``; SQLite, every commit
fsynced, the spool and the archive fsynced) relaying to Postfix's ``smtp-sink``. The load generators share the
cores (this machine has 2), so the figures are a floor for the gateway, not a ceiling.

1. Reference floor: ``smtp-source -s 20 -d -m N -F msg`` against ``smtp-sink`` directly (C on both ends), and
   our Python client (aiosmtplib, 20 connections) against ``smtp-sink``: what the machine and the client cost.
2. The gateway fed by ``smtp-source`` (the same message file N times; the archive stores it once) and by the
   Python client sending N distinct messages built from ../shared/corpora/ham (their subjects, MIME headers
   and bodies; From and envelope rewritten to a sender whose SPF and DMARC pass). Reported: accepted
   messages/s over the whole run, the gateway's CPU ms per message (user+system of the serve process, spent
   receiving, scanning, archiving and delivering), time until the queue is empty, and for the Python client
   p50/p99 of the SMTP transaction (MAIL FROM to the reply to the end of DATA) with 20 concurrent clients
   (saturated: mostly queueing) and with one client (the unloaded cost).
3. ``--no-loss``: ``tests/gateway/test_no_loss.py`` at 10,000 messages (the suite runs 1,000): every message
   that got a 250 delivered or quarantined, duplicates counted; once steady, once with three SIGKILLs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the test helpers, and not this directory: its auth.py would hide the tests' auth package
sys.path[:] = [str(ROOT / "tests"), str(ROOT / "tests" / "gateway"),
               *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench")]

from auth.dnsserver import KnotServer, free_port  # noqa: E402
from gwharness import zone_records  # noqa: E402
from loadrun import (  # noqa: E402
    CountingSink,
    LoadResult,
    Serve,
    SinkController,
    load_message,
    org_toml,
    quarantined_ids,
    send_all,
    serve_env,
    tally,
    wait_until_drained,
)

from mailwarden.gateway.server import open_engine  # noqa: E402

HAM = ROOT.parent / "shared" / "corpora" / "ham"
SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
CLIENTS = 20
KEEP = re.compile(rb"^(subject|mime-version|content-type|content-transfer-encoding):", re.IGNORECASE)


# --- messages -----------------------------------------------------------------------------------------------

def corpus_messages(count: int) -> list[tuple[int, str, bytes]]:
    """Distinct messages from the ham corpus: its subjects, MIME headers and bodies, our sender and ids."""
    files = sorted(HAM.glob("*.eml")) if HAM.is_dir() else []
    if not files:
        return [(n, *load_message(n)) for n in range(count)]
    sources = []
    for path in files[:500]:
        raw = path.read_bytes().replace(b"\r\n", b"\n")
        head, _, body = raw.partition(b"\n\n")
        kept, keeping = [], False
        for line in head.split(b"\n"):
            if line[:1] in (b" ", b"\t"):
                if keeping:
                    kept.append(line)
                continue
            keeping = bool(KEEP.match(line))
            if keeping:
                kept.append(line)
        sources.append((b"\r\n".join(kept), body.replace(b"\n", b"\r\n")))
    messages = []
    for n in range(count):
        head, body = sources[n % len(sources)]
        ours = (f"From: Alice <alice@good.gw.test>\r\nTo: bob@acme.gw.test\r\nMessage-ID: <bench-{n}@good.gw.test>\r\n"
                f"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\nX-Load-Id: {n}\r\n").encode()
        messages.append((n, "alice@good.gw.test", ours + head + b"\r\n\r\n" + body))
    return messages


def median_size(messages: list[tuple[int, str, bytes]]) -> int:
    sizes = sorted(len(m[2]) for m in messages)
    return sizes[len(sizes) // 2]


# --- Postfix's tools ----------------------------------------------------------------------------------------

@contextlib.contextmanager
def smtp_sink(port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``smtp-sink``: accepts everything, keeps nothing, answers fast (pipelining, no fsync)."""
    process = subprocess.Popen([SMTP_SINK, "-c", "-u", "nobody", f"127.0.0.1:{port}", "1024"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), __import__("socket").create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.05)
        yield process
    finally:
        process.terminate()
        process.wait(10)


def smtp_source(port: int, count: int, message: Path) -> float:
    """Wall seconds for ``smtp-source`` to send ``count`` copies of the message over 20 sessions."""
    lf = message.with_suffix(".lf")  # smtp-source ends every line with CRLF itself
    lf.write_bytes(message.read_bytes().replace(b"\r\n", b"\n"))
    started = time.perf_counter()
    done = subprocess.run([SMTP_SOURCE, "-s", str(CLIENTS), "-d", "-m", str(count), "-M", "client.gw.test", "-f",
                           "alice@good.gw.test", "-t", "bob@acme.gw.test", "-F", str(lf), f"127.0.0.1:{port}"],
                          check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=1800)
    if done.returncode:
        raise SystemExit(f"smtp-source failed: {done.stderr.decode(errors='replace')[-2000:]}")
    return time.perf_counter() - started


# --- runs ---------------------------------------------------------------------------------------------------

def python_load(messages: list[tuple[int, str, bytes]], port: int, clients: int) -> LoadResult:
    result = asyncio.run(send_all(messages, ports=[port], clients=clients, timeout=3600))
    if result.refused or len(result.accepted) != len(messages):
        raise SystemExit(f"not every message was accepted: {len(result.refused)} refused, {dict(result.errors)}")
    return result


def row(label: str, count: int, seconds: float, cpu: float | None = None, result: LoadResult | None = None,
        drained: float | None = None) -> str:
    cells = [label, f"{count:,}", f"{seconds:.1f}", f"{count / seconds:.0f}",
             f"{cpu * 1000 / count:.2f}" if cpu is not None else "",
             f"{result.median * 1000:.1f}" if result else "", f"{result.percentile(99) * 1000:.1f}" if result else "",
             f"{drained:.1f}" if drained is not None else ""]
    return "| " + " | ".join(cells) + " |"


def gateway_runs(work: Path, dns: str, count: int, settings: dict[str, object]) -> list[str]:
    rows = []
    messages = corpus_messages(count)
    sample = work / "sample.eml"
    sample.write_bytes(messages[len(messages) // 2][2])
    for label in ("python", "smtp-source", "python, 1 client"):
        relay = free_port()
        run_dir = work / f"run-{label.replace(' ', '').replace(',', '-')}"
        data_dir = run_dir / "data"
        data_dir.mkdir(parents=True)
        config = org_toml(run_dir / "org.toml", dns, **{"poll_interval": 1.0, **settings})
        database = f"sqlite:///{data_dir / 'mailwarden.db'}"
        with smtp_sink(relay):
            serve = Serve(data_dir, config, serve_env(database, relay), free_port(), free_port(), cpus="0,1").start()
            try:
                time.sleep(1.0)
                before = serve.cpu_seconds
                started = time.perf_counter()
                result = None
                sent = count if label != "python, 1 client" else max(200, count // 10)
                if label == "smtp-source":
                    seconds = smtp_source(serve.smtp_port, sent, sample)
                else:
                    result = python_load(messages[:sent], serve.smtp_port, 1 if "1 client" in label else CLIENTS)
                    seconds = result.seconds
                engine = open_engine(database)
                try:
                    wait_until_drained(engine, 1800)
                finally:
                    engine.dispose()
                drained = time.perf_counter() - started
                cpu = serve.cpu_seconds - before
            finally:
                serve.stop()
        rows.append(row(f"gateway, {label}", sent, seconds, cpu, result, drained))
    return rows


def floor_runs(work: Path, count: int) -> list[str]:
    messages = corpus_messages(count)
    sample = work / "floor.eml"
    sample.write_bytes(messages[len(messages) // 2][2])
    port = free_port()
    with smtp_sink(port):
        seconds = smtp_source(port, count, sample)
        source = row("smtp-source -> smtp-sink", count, seconds)
        result = python_load(messages, port, CLIENTS)
        python = row("Python client -> smtp-sink", count, result.seconds, None, result)
    return [source, python]


def no_loss_runs(work: Path, dns: str, count: int) -> list[str]:
    lines = []
    for kills in (0, 3):
        sink = CountingSink()
        relay = free_port()
        controller = SinkController(sink, hostname="127.0.0.1", port=relay)
        controller.start()
        run_dir = work / f"noloss-{kills}"
        data_dir = run_dir / "data"
        data_dir.mkdir(parents=True)
        database = f"sqlite:///{data_dir / 'mailwarden.db'}"
        config = org_toml(run_dir / "org.toml", dns, learn_batch=500, learn_interval=2.0)
        serve = Serve(data_dir, config, serve_env(database, relay), free_port(), free_port()).start()

        def kill_and_restart(serve: Serve = serve) -> None:
            serve.kill()
            time.sleep(0.3)
            serve.start()

        try:
            messages = [(n, *load_message(n)) for n in range(count)]
            events = [(share, kill_and_restart) for share in (0.25, 0.5, 0.75)[:kills]]
            result = asyncio.run(send_all(messages, ports=[serve.smtp_port], clients=CLIENTS, timeout=3600,
                                          events=events))  # type: ignore[arg-type]
            engine = open_engine(database)
            try:
                wait_until_drained(engine, 1800)
                expected = count - len(quarantined_ids(count))
                deadline = time.monotonic() + 60
                while sink.messages < expected and time.monotonic() < deadline:
                    time.sleep(0.1)
                outcome = tally(result, sink, engine)
            finally:
                engine.dispose()
        finally:
            serve.stop()
            controller.stop()
        lines.append(f"| {kills} | {count:,} | {result.seconds:.1f} | {len(result.accepted) / result.seconds:.0f} | "
                     f"{outcome.delivered:,} | {outcome.quarantined:,} | {len(outcome.lost)} | "
                     f"{sum(outcome.duplicates.values())} ({outcome.accepted_twice} + {outcome.redelivered}) | "
                     f"{sum(result.errors.values()):,} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 messages per run instead of 5,000")
    parser.add_argument("--messages", type=int, help="messages per run")
    parser.add_argument("--no-loss", action="store_true", help="also the 10,000-message no-loss runs")
    parser.add_argument("--only-no-loss", action="store_true", help="only the no-loss runs")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a [gateway] setting for the gateway runs (repeatable), e.g. --set io_workers=4")
    options = parser.parse_args()
    settings = {name: float(value) if "." in value else int(value) if value.isdigit() else value
                for name, _, value in (item.partition("=") for item in options.set)}
    count = options.messages or (1000 if options.quick else 5000)
    for tool in (SMTP_SOURCE, SMTP_SINK) if not options.only_no_loss else ():
        if not Path(tool).exists():
            raise SystemExit(f"{tool} not found: apt-get install -y postfix (only its test tools are used)")
    with tempfile.TemporaryDirectory(prefix="mw-bench-gw-") as tmp:
        work = Path(tmp)
        with KnotServer(work / "knot", {"gw.test": zone_records()}) as knot:
            if not options.only_no_loss:
                sample = corpus_messages(count)
                print(f"{count:,} messages per run (median {median_size(sample):,} bytes), {CLIENTS} concurrent "
                      "clients unless noted; SQLite; gateway pinned to 2 cores\n")
                print("| run | messages | wall s | accepted/s | gateway CPU ms/msg | p50 ms | p99 ms | "
                      "until delivered s |")
                print("|---|---:|---:|---:|---:|---:|---:|---:|")
                for line in floor_runs(work, count):
                    print(line, flush=True)
                for line in gateway_runs(work, knot.address, count, settings):
                    print(line, flush=True)
            if options.no_loss or options.only_no_loss:
                print("\nNo loss (10,000 messages, 20 clients, every tenth one quarantined):\n")
                print("| SIGKILLs | messages | wall s | accepted/s | delivered | quarantined | lost | "
                      "extra copies (accepted twice + delivered again) | retried transactions |")
                print("|---:|---:|---:|---:|---:|---:|---:|---|---:|")
                for line in no_loss_runs(work, knot.address, 10_000):
                    print(line, flush=True)


if __name__ == "__main__":
    main()
