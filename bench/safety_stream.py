"""CPU cost of the streaming output redactor per KB streamed, old against new (prints numbers, never fails).

    python bench/safety_stream.py [--reps 5] [--kb 3] [--chunks 1,4,16,64] [--batch 256] [--json]

Completions of ``--kb`` KB (ordinary prose; prose with PII and keys mixed in; a jailbreak
template) are streamed in chunks of 1, 4, 16 and 64 characters through the previous
redactor (``ReferenceStreamRedactor``, kept in tests/safety/test_stream_equivalence.py: it
scans after every chunk) and the current one, each timed in CPU seconds (the machine is
shared), alternating old and new ``--reps`` times; the table shows medians. ``whole`` is
one ``scan_output`` of the same text, the yardstick the stream should stay close to.
``--batch`` sets the new redactor's batch (a larger one costs less and holds back more).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from safety.engine import SafetyEngine  # noqa: E402
from safety.stream import BATCH, StreamRedactor  # noqa: E402
from safety_scanners import JAILBREAK, MIXED, PROSE  # noqa: E402
from tests.safety.test_stream_equivalence import ReferenceStreamRedactor  # noqa: E402


def cpu_ms_per_kb(fn: Callable[[], object], text: str) -> float:
    t0 = time.process_time()
    fn()
    return (time.process_time() - t0) * 1000 / (len(text) / 1024)


def streamer(make: Callable[[], object], text: str, size: int) -> Callable[[], object]:
    chunks = [text[i : i + size] for i in range(0, len(text), size)]

    def stream() -> object:
        r = make()
        for c in chunks:
            r.feed(c)  # type: ignore[attr-defined]
        return r.finish()  # type: ignore[attr-defined]

    return stream


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5, help="alternating old/new rounds (medians are shown)")
    ap.add_argument("--kb", type=int, default=3, help="size of each completion")
    ap.add_argument("--chunks", default="1,4,16,64", help="chunk sizes in characters")
    ap.add_argument("--batch", type=int, default=BATCH, help="releasable characters the new redactor waits for")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    args = ap.parse_args()
    engine = SafetyEngine(use_classifier=False)
    policy = engine.policies.for_tenant("bench")
    n = args.kb * 1024
    texts = {
        name: (base * (n // len(base) + 1))[:n]
        for name, base in (("prose", PROSE), ("mixed", MIXED), ("jailbreak", JAILBREAK))
    }
    sizes = [int(s) for s in args.chunks.split(",")]
    makers = {
        "old": lambda: ReferenceStreamRedactor(engine, policy),
        "new": lambda: StreamRedactor(engine, policy, batch=args.batch),
    }

    rows = []
    for name, text in texts.items():

        def scan(text: str = text) -> object:
            return engine.scan_output(text, "bench")

        whole = statistics.median(cpu_ms_per_kb(scan, text) for _ in range(args.reps))
        for size in sizes:
            runs = {k: streamer(m, text, size) for k, m in makers.items()}
            for run in runs.values():
                run()  # warm up
            samples: dict[str, list[float]] = {"old": [], "new": []}
            for _ in range(args.reps):
                for label, run in runs.items():
                    samples[label].append(cpu_ms_per_kb(run, text))
            old, new = statistics.median(samples["old"]), statistics.median(samples["new"])
            rows.append(
                {
                    "text": name,
                    "chunk": size,
                    "old_ms_per_kb": old,
                    "new_ms_per_kb": new,
                    "old_over_new": old / new,
                    "whole_ms_per_kb": whole,
                    "new_over_whole": new / whole,
                }
            )

    load = os.getloadavg()
    if args.json:
        import json

        print(
            json.dumps(
                {
                    "load": load,
                    "cpus": os.cpu_count(),
                    "reps": args.reps,
                    "kb": args.kb,
                    "batch": args.batch,
                    "rows": rows,
                },
                indent=2,
            )
        )
        return
    print(
        f"stream redactor CPU ms per KB streamed ({args.kb} KB texts, batch {args.batch}, "
        f"median of {args.reps} alternating rounds, {os.cpu_count()} CPUs, "
        f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})"
    )
    print(f"{'text':10s} {'chunk':>5s} {'old':>9s} {'new':>9s} {'old/new':>8s} {'whole':>7s} {'new/whole':>9s}")
    for r in rows:
        print(
            f"{r['text']:10s} {r['chunk']:5d} {r['old_ms_per_kb']:9.3f} {r['new_ms_per_kb']:9.3f} "
            f"{r['old_over_new']:7.1f}x {r['whole_ms_per_kb']:7.3f} {r['new_over_whole']:8.2f}x"
        )


if __name__ == "__main__":
    main()
