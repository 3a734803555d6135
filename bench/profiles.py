"""Scan throughput with and without a large learned world: 10,000 correspondents and 1,000 partners.

    python3 bench/profiles.py [--messages N]

The profiles and partners are synthetic (random names, domains, IPs, payment ids) but shaped like learned
ones, so every lookup the analyzers do (display names, thread index, payment ids, infrastructure) runs
against realistic sizes. Prints messages/s for both and the ratio (target: within 20%).
"""

from __future__ import annotations

import argparse
import random
import statistics
import string
import time
from datetime import UTC, datetime
from pathlib import Path

from mailwarden.config import OrgConfig, Partner, Person, load_org
from mailwarden.message import parse
from mailwarden.pipeline import Context, scan
from mailwarden.profiles import Profile, Profiles

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def _word(rng: random.Random, low: int = 5, high: int = 10) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(low, high)))


def big_world(base: OrgConfig, correspondents: int, partners: int, seed: int = 7) -> tuple[OrgConfig, Profiles]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    partner_list = list(base.partners)
    for _ in range(partners):
        name = f"{_word(rng).title()} {_word(rng).title()} Ltd"
        domain = f"{_word(rng)}-{_word(rng)}.com"
        partner_list.append(Partner(name, (domain,), (f"{_word(rng)}.{_word(rng)}@{domain}",)))
    people = list(base.people) + [Person(f"{_word(rng)}@{base.domains[0] if base.domains else 'example.com'}",
                                         f"{_word(rng).title()} {_word(rng).title()}") for _ in range(200)]
    org = OrgConfig(name=base.name, domains=base.domains, authserv_id=base.authserv_id,
                    partners=tuple(partner_list), people=tuple(people), scoring=base.scoring)
    profiles = Profiles()
    for _ in range(correspondents):
        domain = f"{_word(rng)}.{rng.choice(['com', 'de', 'co.uk', 'fr'])}"
        email = f"{_word(rng)}@{domain}"
        facts = {
            "display_names": {f"{_word(rng)} {_word(rng)}"},
            "sending_domains": {domain},
            "dkim_domains": {domain},
            "ips": {f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"},
            "mailers": {rng.choice(["microsoft outlook 16.0", "apple mail", "thunderbird"])},
            "payment_ids": {f"iban:GB{rng.randint(10, 99)}{_word(rng, 4, 4).upper()}{rng.randint(10**13, 10**14)}"},
            "thread_ids": {f"<{_word(rng, 12, 20)}@{domain}>" for _ in range(5)},
            "recipients": {f"{_word(rng)}@example.com"},
        }
        for kind, key, table in (("sender", email, profiles.senders), ("domain", domain, profiles.domains)):
            profile = table.setdefault(key, Profile(kind=kind, key=key, first_seen=now, last_seen=now))
            profile.count += 3
            profile.merge_sets(facts)
    return org, profiles


def throughput(raws: list[bytes], context: Context, runs: int = 3) -> float:
    rates = []
    for _ in range(runs):
        start = time.process_time()
        for raw in raws:
            scan(parse(raw, authserv_id=context.org.authserv_id), context)
        rates.append(len(raws) / (time.process_time() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1500)
    args = parser.parse_args()
    files = sorted((SHARED / "corpora" / "ham").glob("*.eml"))[: args.messages // 2]
    files += sorted((SHARED / "corpora" / "phish").glob("*.eml"))[: args.messages // 2]
    files += sorted((SHARED / "scenarios" / "messages").glob("*.eml"))
    raws = [f.read_bytes() for f in files]
    base = load_org(SHARED / "scenarios" / "org.toml")
    small = Context.for_org(base)
    org, profiles = big_world(base, correspondents=10_000, partners=1_000)
    big = Context.for_org(org, profiles)
    scan(parse(raws[0]), big)  # build per-org indexes before timing
    plain = throughput(raws, small)
    loaded = throughput(raws, big)
    print("| world | messages | messages/s (CPU, median of 3) |")
    print("|---|---:|---:|")
    print(f"| scenario org, no profiles | {len(raws)} | {plain:.0f} |")
    print(f"| + 10,000 correspondents, 1,000 partners, 200 people | {len(raws)} | {loaded:.0f} |")
    print(f"\nratio: {loaded / plain:.2f} (target >= 0.80)")


if __name__ == "__main__":
    main()
