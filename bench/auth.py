"""Cost of live authentication (SPF, DKIM, DMARC, ARC, DNSBL) per message, against a real DNS server.

    python3 bench/auth.py             # 200 messages x 5 rounds
    python3 bench/auth.py --quick     # 50 messages x 3 rounds

Starts Knot DNS on 127.0.0.1 (the test zones of tests/auth: nothing asks the machine's resolver) and
authenticates messages whose bodies come from ../shared/corpora/ham, re-addressed from signer.test and
DKIM-signed with RSA-2048 (or ed25519), plus ARC-sealed forwarded messages.

Warm cache: CPU ms per message (process time, every thread) of ``mailwarden.auth.evaluate`` after the
cache has seen each question once, and of the whole ``scan`` with an envelope. Target: at most 2 ms.
Cold cache with a resolver that never answers: wall time of one evaluation (bounded by the DNS timeout,
the independent questions being asked at once) and of 50 evaluations at once through
``evaluate_async`` (they wait side by side, not one after another).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "auth"))

import conftest  # noqa: E402  (the test zones and message helpers)
from dnsserver import Blackhole, KnotServer  # noqa: E402

from mailwarden.auth import evaluate, evaluate_async  # noqa: E402
from mailwarden.config import org_from_dict  # noqa: E402
from mailwarden.dns import LiveResolver  # noqa: E402
from mailwarden.message import Envelope, parse  # noqa: E402
from mailwarden.pipeline import Context, scan  # noqa: E402

HAM = ROOT.parent / "shared" / "corpora" / "ham"
TARGET_MS = 2.0
ENVELOPE = Envelope(client_ip="192.0.2.25", helo="mail.signer.test", mail_from="bounce@signer.test",
                    rcpt_to=("ap@acme-corp.test",))
FORWARDED = Envelope(client_ip="198.51.100.9", helo="mail.lists.test", mail_from="bounces@lists.test")
ORG = org_from_dict({"organization": {"domains": ["acme-corp.test"], "authserv_id": "mx1.acme-corp.test"},
                     "auth": {"trusted_arc_sealers": ["lists.test"],
                              "dnsbl": [{"zone": "bl.test"}, {"zone": "dbl.test", "kind": "domain"}]}})


def bodies(count: int) -> list[tuple[str, bytes]]:
    """(Content-Type, body) of the first ham messages; a plain text body when the corpus is absent."""
    found = []
    for path in sorted(HAM.glob("*.eml"))[:count] if HAM.is_dir() else []:
        raw = path.read_bytes().replace(b"\r\n", b"\n")
        head, _, body = raw.partition(b"\n\n")
        ctype = next((line.split(b":", 1)[1].strip().decode("ascii", "replace") for line in head.split(b"\n")
                      if line.lower().startswith(b"content-type:")), "text/plain; charset=us-ascii")
        found.append((ctype if "\n" not in ctype else "text/plain", body.replace(b"\n", b"\r\n")))
    return found or [("text/plain", b"Please pay the attached invoice by Friday.\r\n" * 40)] * count


def messages(keys: conftest.Keys, count: int) -> list[bytes]:
    out = []
    for index, (ctype, body) in enumerate(bodies(count)):
        head = (f"From: Accounts <accounts@signer.test>\r\nTo: ap@acme-corp.test\r\nSubject: Statement {index}\r\n"
                f"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\nMessage-ID: <{index}.bench@signer.test>\r\n"
                f"MIME-Version: 1.0\r\nContent-Type: {ctype}\r\n\r\n").encode()
        out.append(conftest.sign(head + body, keys, selector="ed" if index % 4 == 3 else "rsa",
                                 ed25519=index % 4 == 3))
    return out


def forwarded(keys: conftest.Keys, count: int) -> list[bytes]:
    out = []
    for index in range(count):
        original = conftest.sign(conftest.message(from_="CEO <ceo@strict.test>", subject=f"Board pack {index}"),
                                 keys, domain="strict.test")
        changed = original.replace(b"Thanks\r\n", b"Thanks\r\n-- \r\nlist footer\r\n")
        out.append(conftest.arc_seal(changed, keys, "lists.test", "dkim=pass header.d=strict.test; "
                                     "dmarc=pass header.from=strict.test"))
    return out


def cpu_ms(work: list[bytes], run: object, rounds: int) -> list[float]:
    per_round = []
    for _ in range(rounds):
        started = time.process_time()
        for raw in work:
            run(raw)  # type: ignore[operator]
        per_round.append((time.process_time() - started) * 1000 / len(work))
    return per_round


def report(name: str, values: list[float]) -> None:
    flag = "ok" if statistics.median(values) <= TARGET_MS else "OVER TARGET"
    print(f"  {name:48} {statistics.median(values):6.3f} ms CPU/message (min {min(values):.3f}, "
          f"max {max(values):.3f})  [{flag} <= {TARGET_MS} ms]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    count, rounds = (50, 3) if args.quick else (200, 5)
    keys = conftest.Keys(*conftest._rsa_keys(), *conftest._ed_keys())
    typical, sealed = messages(keys, count), forwarded(keys, max(10, count // 5))
    with tempfile.TemporaryDirectory() as tmp, KnotServer(Path(tmp), conftest.zones(keys)) as server, \
            LiveResolver(server.address) as live:
        print(f"live authentication, {len(typical)} typical + {len(sealed)} ARC-sealed messages, "
              f"mean size {sum(map(len, typical)) // len(typical)} bytes, DNS {server.address} (Knot)")
        started = time.monotonic()
        for raw in typical + sealed:  # cold cache, the real server
            evaluate(raw, ENVELOPE, live, ORG.auth)
        print(f"  first pass (cold cache, loopback server): "
              f"{(time.monotonic() - started) * 1000 / len(typical + sealed):.2f} ms "
              f"wall/message; {live.counters.as_dict()}")
        check = evaluate(typical[0], ENVELOPE, live, ORG.auth)
        print(f"  verdict: spf={check.spf.result} dkim={[d.result for d in check.dkim]} dmarc={check.dmarc.result}")
        report("evaluate(), typical message, warm cache",
               cpu_ms(typical, lambda raw: evaluate(raw, ENVELOPE, live, ORG.auth), rounds))
        report("evaluate(), ARC-sealed forwarded, warm cache",
               cpu_ms(sealed, lambda raw: evaluate(raw, FORWARDED, live, ORG.auth), rounds))
        context = Context(org=ORG, resolver=live)
        parsed = [parse(raw, ENVELOPE, authserv_id=ORG.authserv_id) for raw in typical]
        by_raw = {m.raw: m for m in parsed}
        whole = cpu_ms([m.raw for m in parsed], lambda raw: scan(by_raw[raw], context), rounds)
        print(f"  {'scan() with an envelope (all analyzers)':48} {statistics.median(whole):6.3f} ms CPU/message")
        without = Context(org=ORG, resolver=live)
        offline = [parse(raw, None, authserv_id=ORG.authserv_id) for raw in typical]
        by_raw_offline = {m.raw: m for m in offline}
        base = cpu_ms([m.raw for m in offline], lambda raw: scan(by_raw_offline[raw], without), rounds)
        print(f"  {'scan() without an envelope (trusted AR only)':48} {statistics.median(base):6.3f} ms CPU/message")
    with Blackhole() as hole, LiveResolver(hole.address, timeout=0.5) as dead:
        started = time.monotonic()
        verdict = evaluate(typical[0], ENVELOPE, dead, ORG.auth)
        one = time.monotonic() - started
        print(f"cold cache, DNS never answers (timeout 0.5 s): one evaluation {one:.2f} s wall "
              f"(spf={verdict.spf.result}, dmarc={verdict.dmarc.result})")

        async def many() -> float:
            began = time.monotonic()
            await asyncio.gather(*(evaluate_async(raw, ENVELOPE, dead, ORG.auth) for raw in typical[:50]))
            return time.monotonic() - began

        dead.clear_cache()
        print(f"  50 evaluations at once through evaluate_async: {asyncio.run(many()):.2f} s wall")


if __name__ == "__main__":
    main()
