"""Scan throughput over the ham and phish corpora, through the real command line and in-process.

    python3 bench/throughput.py            # every message of ../shared/corpora/{ham,phish}
    python3 bench/throughput.py --quick    # every 10th message, one worker count per run still x3

Command line: ``python -m mailwarden.cli --data-dir TMP scan --format jsonl --workers N PATH...`` with
output to /dev/null, for N = 1 and 2, three runs each: median wall time, messages/s, messages/s per
worker, CPU ms per message (user+sys of the child processes, from getrusage(RUSAGE_CHILDREN) deltas,
start-up included) and the peak RSS of the largest process (from wait4).

In-process: CPU ms per message (process time) for mailwarden's parse, parse+scan, and the standard
library's ``email.message_from_bytes`` with compat32 and policy.default on the same bytes, for ham and
phish apart. Reference (same corpus kind): rspamd ~1.7 ms CPU per ham, 3.2 ms per phish; CPython MIME
parse 1.4 ms (policy.default) or 0.5 ms (compat32). Target: at least 250 messages/s per core.
"""

from __future__ import annotations

import argparse
import email
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from pathlib import Path

from mailwarden.message import parse
from mailwarden.pipeline import Context, scan
from mailwarden.sources import read_messages

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPORA = {"ham": SHARED / "corpora" / "ham", "phish": SHARED / "corpora" / "phish"}
TARGET_PER_CORE = 250
RUNS = 3


@dataclass(frozen=True)
class CliRun:
    wall: float
    cpu: float  # user + sys seconds of the child processes
    peak_rss_mb: float


def corpus_files(quick: bool) -> dict[str, list[Path]]:
    files = {}
    for name, folder in CORPORA.items():
        if not folder.is_dir():
            sys.exit(f"corpus not found: {folder}")
        found = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        files[name] = found[::10] if quick else found
    return files


def count_messages(paths: list[Path]) -> int:
    return sum(1 for path in paths for item in read_messages(path) if item.raw is not None)


def run_cli(workers: int, arguments: list[str], data_dir: str) -> CliRun:
    command = [sys.executable, "-m", "mailwarden.cli", "--data-dir", data_dir, "scan", "--format", "jsonl",
               "--workers", str(workers), *arguments]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.PIPE)
        assert process.stderr is not None
        errors = process.stderr.read()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0:
        sys.exit(f"scan failed ({process.returncode}): {errors.decode(errors='replace')[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return CliRun(wall=wall, cpu=cpu, peak_rss_mb=usage.ru_maxrss / 1024)


def cpu_ms_per_message(raws: list[bytes], work: Callable[[bytes], object]) -> tuple[float, float]:
    """(median, mean) process-time milliseconds of ``work`` per message."""
    times = []
    for raw in raws:
        start = time.process_time()
        work(raw)
        times.append(time.process_time() - start)
    return statistics.median(times) * 1000, sum(times) / len(times) * 1000


def cli_table(files: dict[str, list[Path]], quick: bool) -> list[str]:
    all_files = [path for group in files.values() for path in group]
    messages = count_messages(all_files)
    arguments = [str(p) for p in all_files] if quick else [str(folder) for folder in CORPORA.values()]
    rows = ["| workers | messages | wall s (median of 3) | messages/s | messages/s per core | CPU ms/message "
            "| peak RSS MB |", "|---:|---:|---:|---:|---:|---:|---:|"]
    verdict = []
    for workers in (1, 2):
        with tempfile.TemporaryDirectory(prefix="mailwarden-bench-") as data_dir:
            runs = [run_cli(workers, arguments, data_dir) for _ in range(RUNS)]
        wall = statistics.median(r.wall for r in runs)
        cpu = statistics.median(r.cpu for r in runs)
        rate = messages / wall
        per_core = rate / workers
        rows.append(f"| {workers} | {messages} | {wall:.2f} | {rate:.0f} | {per_core:.0f} | "
                    f"{cpu / messages * 1000:.2f} | {max(r.peak_rss_mb for r in runs):.0f} |")
        verdict.append(f"--workers {workers}: {per_core:.0f} messages/s per core "
                       f"({'meets' if per_core >= TARGET_PER_CORE else 'below'} the {TARGET_PER_CORE}/s target)")
    return [*rows, "", *verdict]


def micro_table(files: dict[str, list[Path]]) -> list[str]:
    context = Context()
    scan(parse(b"From: a@example.com\n\nwarm up https://example.com/\n"), context)
    compat32 = policy.compat32
    default = policy.default
    measures: list[tuple[str, Callable[[bytes], object]]] = [
        ("mailwarden parse", parse),
        ("mailwarden parse+scan", lambda raw: scan(parse(raw), context)),
        ("email compat32", lambda raw: email.message_from_bytes(raw, policy=compat32)),
        ("email policy.default", lambda raw: email.message_from_bytes(raw, policy=default)),
    ]
    rows = ["| CPU ms per message (median / mean) | " + " | ".join(
        f"{name} ({len(paths)})" for name, paths in files.items()) + " |",
            "|---|" + "---:|" * len(files)]
    raws = {name: [item.raw for path in paths for item in read_messages(path) if item.raw is not None]
            for name, paths in files.items()}
    for label, work in measures:
        cells = []
        for name in files:
            median, mean = cpu_ms_per_message(raws[name], work)
            cells.append(f"{median:.2f} / {mean:.2f}")
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    rows.append("| reference: rspamd (CPU per message) | 1.7 | 3.2 |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="every 10th message instead of all of them")
    parser.add_argument("--no-cli", action="store_true", help="only the in-process measurement")
    args = parser.parse_args()
    files = corpus_files(args.quick)
    print(f"# mailwarden throughput ({'quick: every 10th message' if args.quick else 'full corpora'})\n")
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
          f"{platform.platform(terse=True)}\n")
    if not args.no_cli:
        print("## Command line: `mailwarden scan --format jsonl --workers N` over ham + phish\n")
        print("\n".join(cli_table(files, args.quick)) + "\n")
    print("## In-process, per message\n")
    print("\n".join(micro_table(files)))


if __name__ == "__main__":
    main()
