"""DMARC aggregate report parsing: ``mailwarden dmarc parse`` against parsedmarc, as whole commands.

    python3 bench/dmarc.py             # one report of 100,000 records, and 1,000 small reports
    python3 bench/dmarc.py --quick     # 20,000 records and 200 small reports
    python3 bench/dmarc.py --rounds 3  # runs of our command per input (parsedmarc runs once: it is slow)

The reports are generated (tests/dmarc/reportgen.py): the large one RFC 7489 XML, the small ones
alternating RFC 7489 and RFC 9990 schemas, plain XML, gzip and zip, 1 to 20 records each, from several
reporters. Both tools run as the installed commands, start-up included, with their JSON sent to
/dev/null: ``mailwarden dmarc parse --format jsonl FILES`` and ``parsedmarc --offline --no-prettify-json
FILES`` (offline: no DNS, no downloads). Reported per input: wall time, records/s, and the peak RSS of
the process (``wait4``). Ours is also run on a report of a quarter of the size, to show that its memory
does not grow with the report. Target: at least 10x parsedmarc's records/s, memory bounded.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "dmarc"))

import reportgen  # noqa: E402


def command(name: str, module: str) -> list[str]:
    script = Path(sys.executable).parent / name
    return [str(script)] if script.exists() else [sys.executable, "-m", module]


def run(argv: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS in MiB) of one run, output discarded."""
    start = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{argv[0]} exited with {process.returncode}")
    return elapsed, usage.ru_maxrss // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-parsedmarc", action="store_true", help="only our command")
    args = parser.parse_args()
    large_records, small = (20_000, 200) if args.quick else (100_000, 1000)
    ours = [*command("mailwarden", "mailwarden.cli"), "dmarc", "parse", "--format", "jsonl"]
    theirs = [*command("parsedmarc", "parsedmarc.cli"), "--offline", "--no-prettify-json"]
    have_theirs = not args.no_parsedmarc and (Path(theirs[0]).exists() or bool(shutil.which("parsedmarc")))
    with tempfile.TemporaryDirectory(prefix="mw-dmarc-bench-") as tmp:
        directory = Path(tmp)
        large, smalls = reportgen.write_corpus(directory, small=small, large_records=large_records)
        quarter = reportgen.write_report(directory / "quarter", "quarter",
                                         reportgen.iter_aggregate_xml(large_records // 4, 8), "xml")
        small_records = sum(1 + (n * 7919) % 20 for n in range(small))
        assert large is not None
        inputs = [(f"1 report, {large_records:,} records ({large.stat().st_size / 2**20:.0f} MiB XML)", [large],
                   large_records),
                  (f"{small:,} small reports, {small_records:,} records (xml/gz/zip, both schemas)", smalls,
                   small_records)]
        print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; median of {args.rounds} runs for ours\n")
        print("| input | tool | wall s | records/s | peak RSS MiB | speed-up |")
        print("|---|---|---:|---:|---:|---:|")
        for label, paths, records in inputs:
            argv_paths = [str(p) for p in paths]
            runs = [run(ours + argv_paths) for _ in range(args.rounds)]
            wall = statistics.median(r[0] for r in runs)
            rss = max(r[1] for r in runs)
            theirs_wall = None
            if have_theirs:
                theirs_wall, theirs_rss = run(theirs + argv_paths)
                print(f"| {label} | parsedmarc offline | {theirs_wall:.2f} | {records / theirs_wall:,.0f} | "
                      f"{theirs_rss} | 1.0x |")
            speed = f"{theirs_wall / wall:.1f}x" if theirs_wall else "-"
            print(f"| {label} | mailwarden | {wall:.2f} | {records / wall:,.0f} | {rss} | {speed} |")
        quarter_wall, quarter_rss = run([*ours, str(quarter)])
        print(f"\nOur peak RSS on {large_records // 4:,} records: {quarter_rss} MiB ({quarter_wall:.2f} s), "
              f"on {large_records:,}: see above (streamed: it does not grow with the report).")


if __name__ == "__main__":
    main()
