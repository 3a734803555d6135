"""Detection quality on labelled folders: recall, false-positive and warn rates, and the signals
most responsible for misses and false alarms.

    python3 bench/evaluate.py                       # the generic corpora (phish, ham, modern-ham)
    python3 bench/evaluate.py --set phish=DIR --set ham=DIR [--config org.toml]

A folder whose name contains "phish" or "malicious" counts as malicious; others as legitimate.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mailwarden.config import OrgConfig, load_org
from mailwarden.message import parse
from mailwarden.pipeline import Context, scan
from mailwarden.sources import expand_paths, read_messages

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DEFAULT_SETS = {
    "phish": (SHARED / "corpora" / "phish", None),
    "ham": (SHARED / "corpora" / "ham", None),
    "modern-ham": (SHARED / "corpora" / "modern-ham" / "messages", SHARED / "corpora" / "modern-ham" / "org.toml"),
}


@dataclass
class Outcome:
    name: str
    malicious: bool
    verdicts: Counter[str] = field(default_factory=Counter)
    blamed: Counter[str] = field(default_factory=Counter)
    missed_signals: Counter[str] = field(default_factory=Counter)
    examples: list[tuple[str, str, int, list[str]]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.verdicts.values())

    def rate(self, *verdicts: str) -> float:
        return 100.0 * sum(self.verdicts[v] for v in verdicts) / max(1, self.total)


def evaluate(name: str, folder: Path, org: OrgConfig) -> Outcome:
    context = Context.for_org(org)
    outcome = Outcome(name, malicious=("phish" in name or "malicious" in name))
    for path in expand_paths([str(folder)]):
        if path.suffix == ".json":
            continue
        for item in read_messages(path):
            if item.raw is None:
                continue
            result = scan(parse(item.raw, authserv_id=org.authserv_id), context)
            verdict = result.verdict.value
            outcome.verdicts[verdict] += 1
            positive = [s.id for s in result.signals if s.score > 0]
            bad = verdict in ("deliver", "warn") if outcome.malicious else verdict != "deliver"
            if bad:
                outcome.blamed.update(positive)
                outcome.examples.append((Path(item.name).name, verdict, result.score, positive))
    return outcome


def report(outcomes: Iterable[Outcome]) -> str:
    lines = ["| set | messages | deliver | warn | quarantine+reject |", "|---|---:|---:|---:|---:|"]
    details = []
    for o in outcomes:
        lines.append(f"| {o.name} | {o.total} | {o.rate('deliver'):.1f}% | {o.rate('warn'):.1f}% | "
                     f"{o.rate('quarantine', 'reject'):.1f}% |")
        kind = "misses (deliver/warn)" if o.malicious else "false alarms (warn or worse)"
        details.append(f"\n{o.name}: signals on {kind}: " +
                       ", ".join(f"{k} {v}" for k, v in o.blamed.most_common(12)))
        for example in sorted(o.examples, key=lambda e: -e[2] if not o.malicious else e[2])[:12]:
            details.append(f"  {example[0]} {example[1]} {example[2]} {example[3]}")
    return "\n".join(lines + details)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", action="append", default=[], help="NAME=DIR (repeatable)")
    parser.add_argument("--config", type=Path, help="org.toml for --set folders")
    parser.add_argument("--json", action="store_true", help="print rates as JSON")
    args = parser.parse_args()
    named = {k: (Path(v), args.config) for k, v in (s.split("=", 1) for s in args.set)}
    sets = named or DEFAULT_SETS
    outcomes = [evaluate(name, folder, load_org(cfg) if cfg else OrgConfig()) for name, (folder, cfg) in sets.items()]
    if args.json:
        print(json.dumps({o.name: {"total": o.total, **{v: o.verdicts[v] for v in
                                                        ("deliver", "warn", "quarantine", "reject")}}
                          for o in outcomes}))
    else:
        print(report(outcomes))


if __name__ == "__main__":
    main()
