"""Server time of each console page over a ledger at the scale of bench/slo_eval.py (30 days at
1M requests a day), on SQLite and PostgreSQL. Prints numbers only (never pass/fail).

Usage: python bench/console_pages.py [--days 30] [--per-day 1000000] [--raw-rows 1000000]
                                     [--repeat 5] [--no-sqlite] [--no-postgres] [--json]

The ledger is built by slo_eval's generator (its rollups as 1M requests a day leave them, hourly
rollups summed from them, and `--raw-rows` raw rows over the same days: 30M raw rows are too
slow to generate here, so the explorer runs on fewer, which it reads through the started_at
indexes, a page at a time). The console runs in-process (FastAPI's TestClient), signed in as
the admin, with the clock at the end of the generated period. The SLO statuses are computed
once first, as the 30 s job keeps them; the cold evaluation is slo_eval's number. Each page's
time is the whole request: queries, template and response, medians of `--repeat`.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fastapi import FastAPI
from fastapi.testclient import TestClient
from rich.console import Console
from sqlalchemy import text

import slo_eval
from canary.service import CanaryService
from console import ConsoleDeps, build_console_router
from ledger.db import create_engine_for
from ledger.testing import TempPostgres, find_pg_bin
from reports.config import ReportsConfig
from reports.service import ReportService
from slo.service import SLOService

KEY = "bench-admin-key-0123456789"
NOW = slo_eval.T_END


@dataclass(frozen=True)
class Admin:
    tenant: str | None = None
    key_id: str | None = "admin"
    is_admin: bool = True


async def authenticate(header: str | None) -> Admin:
    if header != f"Bearer {KEY}":
        raise PermissionError("bad key")
    return Admin()


def pages(conn: Any) -> dict[str, str]:
    """The page paths measured; the request ids come from the generated rows."""
    newest = conn.execute(text("SELECT request_id FROM requests ORDER BY started_at DESC LIMIT 1")).scalar()
    return {
        "overview": "/ui",
        "SLO list": "/ui/slos",
        "SLO detail": "/ui/slos/bench-availability",
        "requests, first page": "/ui/requests",
        "requests, tenant + 5xx": "/ui/requests?tenant=globex&status=5xx",
        "requests, alias + version + error type": "/ui/requests?alias=chat&version=chat@v2&error_type=timeout",
        "requests, one day": "/ui/requests?start=2025-02-10T00:00&end=2025-02-11T00:00",
        "one request": f"/ui/requests/{newest}",
        "cost (30 days)": "/ui/cost",
        "cost (7 days)": "/ui/cost?days=7",
        "safety review": "/ui/review",
        "canary": "/ui/canary",
        "models and audit": "/ui/models",
    }


def measure(url: str, args: argparse.Namespace, console: Console) -> dict[str, Any]:
    slos = slo_eval.bench_slos()
    t = time.perf_counter()
    counts = slo_eval.populate(url, args, slos, console)
    gen_s = time.perf_counter() - t
    engine = create_engine_for(url)
    tmp = tempfile.mkdtemp(prefix="iw-console-bench-")
    slo_service = SLOService(engine, slos, clock=lambda: NOW)
    t = time.perf_counter()
    slo_service.evaluate_all(NOW)
    cold_ms = (time.perf_counter() - t) * 1000
    deps = ConsoleDeps(
        engine=engine,
        authenticate=authenticate,
        slos=slo_service,
        canary=CanaryService(engine, clock=lambda: NOW),
        reports=ReportService(engine, ReportsConfig(), Path(tmp)),
        health=lambda: {"upstreams": [], "ledger": {"database_up": True, "queue_depth": 0, "spool_files": 0}},
        budgets=lambda tenant: [],
        rollback_alias=None,  # type: ignore[arg-type] - no form is sent
        secret=b"bench-console-secret-0123456789",
        clock=lambda: NOW,
    )
    app = FastAPI()
    app.include_router(build_console_router(deps))
    out: dict[str, Any] = {}
    with TestClient(app) as client, engine.connect() as conn:
        client.get("/ui/login")
        r = client.post("/ui/login", data={"key": KEY, "csrf": client.cookies["iw_login"]}, follow_redirects=False)
        assert r.status_code == 303, r.text
        pages_after: dict[str, str] = {}
        for name, path in [*pages(conn).items(), ("requests, page 2 (keyset)", None)]:
            path = path or pages_after.get(name)
            if path is None:
                continue
            times = []
            for _ in range(args.repeat + 1):  # the first warms the connection pool and the templates
                t = time.perf_counter()
                r = client.get(path)
                times.append((time.perf_counter() - t) * 1000)
                if r.status_code != 200:
                    raise RuntimeError(f"{path}: {r.status_code} {r.text[:300]}")
            rows = r.text.count("<tr")
            out[name] = {
                "median_ms": round(statistics.median(times[1:]), 1),
                "max_ms": round(max(times[1:]), 1),
                "table_rows": rows,
            }
            older = re.search(r'href="([^"]+)" id="older"', r.text)
            if name == "requests, first page" and older:  # then the page after it, through its own link
                pages_after = {"requests, page 2 (keyset)": html.unescape(older.group(1))}
    engine.dispose()
    return {
        "backend": engine.dialect.name,
        "days": args.days,
        "requests_per_day": args.per_day,
        "rows": counts,
        "generate_s": round(gen_s, 1),
        "slo_cold_evaluation_ms": round(cold_ms, 1),
        "pages": out,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--per-day", type=int, default=1_000_000)
    ap.add_argument("--raw-rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-sqlite", action="store_true")
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    console = Console(stderr=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="iw-console-bench-") as tmp:
        if not args.no_sqlite:
            results.append(measure(f"sqlite:///{Path(tmp) / 'ledger.db'}", args, console))
        bin_dir = None if args.no_postgres else find_pg_bin()
        if bin_dir is not None:
            pg = TempPostgres(bin_dir)
            try:
                pg.start()
                results.append(measure(pg.create_database("console_bench"), args, console))
            finally:
                pg.close()
    if args.json:
        print(json.dumps({"results": results}, indent=2))
        return
    for r in results:
        print(
            f"\n{r['backend']}: {r['days']} days x {r['requests_per_day']:,} requests/day; rows {r['rows']}; "
            f"generated in {r['generate_s']} s; SLO cold evaluation {r['slo_cold_evaluation_ms']} ms"
        )
        for name, p in r["pages"].items():
            print(f"  {name:42s} {p['median_ms']:8.1f} ms median  {p['max_ms']:8.1f} ms max  ({p['table_rows']} rows)")


if __name__ == "__main__":
    main()
