"""Ledger write throughput and request-path cost: LedgerWriter vs one transaction per record.

Prints numbers only. Usage: python bench/ledger_writer.py [--records N] [--naive-records N] [--no-postgres]
PostgreSQL runs on a throwaway local server with durable settings (fsync on) when its
binaries exist (see ledger.testing.find_pg_bin).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger.buckets import normalize
from ledger.db import create_engine_for, migrate
from ledger.record import RequestRecord
from ledger.store import write_records
from ledger.testing import TempPostgres, find_pg_bin, random_records
from ledger.writer import LedgerWriter


def _pct(values_ns: list[int], q: float) -> float:
    values = sorted(values_ns)
    return values[min(len(values) - 1, int(q * len(values)))] / 1000.0


def bench_writer(url: str, records: list[RequestRecord], spool: Path, batch_size: int) -> dict[str, float]:
    engine = create_engine_for(url)
    # queue big enough for a burst of all records: this measures batching, not the overflow path
    w = LedgerWriter(engine, spool, batch_size=batch_size, queue_size=len(records) + 1)
    costs = []
    t0 = time.perf_counter()
    for r in records:
        s = time.perf_counter_ns()
        w.submit(r)
        costs.append(time.perf_counter_ns() - s)
    ok = w.flush(300)
    elapsed = time.perf_counter() - t0
    st = w.stats()
    w.close()
    engine.dispose()
    if not ok or st.written_total != len(records):
        print(f"  warning: writer not drained: {st}")
    return {
        "rps": len(records) / elapsed,
        "p50": _pct(costs, 0.5),
        "p99": _pct(costs, 0.99),
        "mean": statistics.fmean(costs) / 1000.0,
    }


def bench_naive(url: str, records: list[RequestRecord]) -> dict[str, float]:
    """What the request path would pay writing its own record: one transaction each."""
    engine = create_engine_for(url)
    bounds = normalize(None)
    costs = []
    t0 = time.perf_counter()
    for r in records:
        s = time.perf_counter_ns()
        with engine.begin() as conn:
            write_records(conn, [r], bounds)
        costs.append(time.perf_counter_ns() - s)
    elapsed = time.perf_counter() - t0
    engine.dispose()
    return {
        "rps": len(records) / elapsed,
        "p50": _pct(costs, 0.5),
        "p99": _pct(costs, 0.99),
        "mean": statistics.fmean(costs) / 1000.0,
    }


def run_backend(name: str, make_url, n: int, n_naive: int, batch_size: int, tmp: Path) -> None:  # type: ignore[no-untyped-def]
    records = random_records(n, seed=1, minutes=60)
    naive_records = random_records(n_naive, seed=2, minutes=60)
    url_w, url_n = make_url("bench_writer"), make_url("bench_naive")
    migrate(url_w)
    migrate(url_n)
    w = bench_writer(url_w, records, tmp / f"spool-{name}", batch_size)
    nv = bench_naive(url_n, naive_records)
    print(f"\n{name}")
    print(f"  {'':44} {'records/s':>10} {'p50 us':>9} {'p99 us':>9} {'mean us':>9}")
    for label, r in (
        (f"LedgerWriter ({n} records, batch {batch_size})", w),
        (f"one txn per record ({n_naive} records)", nv),
    ):
        print(f"  {label:44} {r['rps']:>10.0f} {r['p50']:>9.1f} {r['p99']:>9.1f} {r['mean']:>9.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--naive-records", type=int, default=2_000)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--no-postgres", action="store_true")
    args = ap.parse_args()
    print(
        f"ledger writer benchmark: python {sys.version.split()[0]}; "
        "the us columns are the request-path cost per record\n"
        "(submit() for LedgerWriter; the whole transaction when the request writes its own row)"
    )
    with tempfile.TemporaryDirectory(prefix="iw-bench-") as d:
        tmp = Path(d)
        run_backend(
            "SQLite (WAL, synchronous=NORMAL)",
            lambda db: f"sqlite:///{tmp / db}.db",
            args.records,
            args.naive_records,
            args.batch_size,
            tmp,
        )
        if args.no_postgres:
            return
        pg_bin = find_pg_bin()
        if pg_bin is None:
            print("\nPostgreSQL: skipped (no server binaries found)")
            return
        server = TempPostgres(pg_bin, fast=False)
        server.start()
        try:
            run_backend(
                f"PostgreSQL {pg_bin.parent.name} (local, fsync on)",
                lambda db: server.create_database(db),
                args.records,
                args.naive_records,
                args.batch_size,
                tmp,
            )
        finally:
            server.close()


if __name__ == "__main__":
    main()
