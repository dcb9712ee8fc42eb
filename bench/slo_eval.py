"""SLO evaluation time: 10 SLOs over 30 days at 1M requests a day, from the rollups (hourly plus
minute, and minute only) and from raw rows. Prints numbers only (never pass/fail).

Usage: python bench/slo_eval.py [--days 30] [--per-day 1000000] [--raw-rows 1000000]
                                [--no-postgres] [--repeat 5] [--json]

The rollups are generated directly, as 1M requests a day leave them: one row per minute per
(tenant, alias, version, operation, status class, error type) that saw requests, and one bucket
row per minute per (tenant, alias, version, status class, metric, bound) that saw a value, over
9 tenant/alias/version scopes. Thirty million raw rows are too slow to generate here, so the
raw-row query runs on `--raw-rows` rows spread over the same days (the same minutes, a lower
rate) and its time is also extrapolated linearly to the full row count, labelled as such. The
hourly rollups are then built from the minute ones by SQL (as migration 0005 does), so the two
agree exactly as the writer keeps them.

Timings printed (each evaluates all 10 SLOs; rollups are read in one pass for all of them),
each with the hourly rollups (the default: hours for the 1 d and 3 d windows and the period,
minutes for the last 6 h and the hours that windows start in) and with minutes only:
- rollups, cold: every SLO's whole period read from the rollups (the first evaluation after a
  start and `inferwatch slo status`);
- rollups, first cached read: the cache's full read (at start and every 6 hours), which also
  reads in minutes the 6 hours after each window start so that it stays exact until then;
- rollups, warm: what the 30 s job pays in steady state (`slo.cache.SeriesCache` re-reads the
  minutes since the last evaluation plus a 10 minute settle window);
- rollups, warm with the late re-read: what the job pays every 10 minutes (the last 3 hours);
- raw: the same SLIs computed by SQL over the `requests` table, measured and extrapolated.
"""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from ledger.buckets import DEFAULT_BUCKETS, with_thresholds
from ledger.db import create_engine_for, migrate
from ledger.testing import TempPostgres, find_pg_bin
from slo.evaluator import MinuteSeries, evaluate, to_minute
from slo.model import SLO, AvailabilitySLI, CostSLI, LatencySLI
from slo.cache import SeriesCache
from slo.service import SLOService
from slo.source import evaluate_ledger_many, fetch_bounds
from slo.spec import parse_specs
from slo.thresholds import thresholds_by_ledger_metric

SPECS = """\
service: bench
defaults: {window: 30d}
slos:
  - {name: availability, objective: 99.5, sli: {availability: {}}}
  - {name: availability-chat, objective: 99.9, sli: {availability: {}}, selector: {model_alias: chat}}
  - {name: availability-acme, objective: 99.5, sli: {availability: {}}, selector: {tenant: acme}}
  - {name: latency-e2e, objective: 99, sli: {latency: {metric: e2e, threshold: 10}}}
  - {name: latency-ttft, objective: 95, sli: {latency: {metric: ttft, threshold: 2}}}
  - {name: latency-tpot, objective: 95, sli: {latency: {metric: tpot, threshold: 0.25}}}
  - {name: ttft-code, objective: 90, sli: {latency: {metric: ttft, threshold: 1}}, selector: {model_alias: code}}
  - {name: e2e-canary, objective: 99, sli: {latency: {metric: e2e, threshold: 5}}, selector: {model_version: chat@v2}}
  - {name: cost, sli: {cost: {budget_usd_per_1k_requests: 2.0}}}
  - {name: cost-globex, sli: {cost: {budget_usd_per_1k_requests: 1.5}}, selector: {tenant: globex}}
"""

# (tenant, alias, version, share of traffic)
SCOPES = [
    (t, a, v, w * tw)
    for t, tw in (("acme", 0.5), ("globex", 0.3), ("initech", 0.2))
    for a, v, w in (("chat", "chat@v1", 0.55), ("chat", "chat@v2", 0.15), ("code", "code@v1", 0.3))
]
# (status class, error type, share)
OUTCOMES = [
    ("2xx", "", 0.986),
    ("4xx", "invalid_request", 0.005),
    ("4xx", "rate_limited", 0.005),
    ("5xx", "upstream_error", 0.003),
    ("5xx", "timeout", 0.001),
]
# lognormal (median s, sigma) of successful requests
DISTS = {"latency": (1.2, 0.8), "ttft": (0.25, 0.9), "tpot": (0.03, 0.6)}
ERROR_LATENCY = {"4xx": 0.02, "5xx": 0.64}  # bucket of failed requests' latency (timeouts: above all)
T_END = datetime(2025, 3, 1, tzinfo=timezone.utc)

ROLLUP_COLS = (
    "minute",
    "tenant",
    "alias",
    "model_version",
    "operation",
    "status_class",
    "error_type",
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "latency_sum_s",
    "ttft_sum_s",
    "ttft_count",
    "tpot_sum_s",
    "tpot_count",
    "safety_flagged",
    "safety_blocked",
    "client_disconnects",
    "cache_hits",
    "safety_incidents_input",
    "safety_incidents_output",
    "cache_lookups",
)
BUCKET_COLS = ("minute", "tenant", "alias", "model_version", "status_class", "metric", "le", "count")
RAW_COLS = (
    "request_id",
    "started_at",
    "tenant",
    "key_id",
    "operation",
    "alias",
    "model_version",
    "upstream",
    "status_code",
    "status_class",
    "error_type",
    "latency_s",
    "ttft_s",
    "tpot_s",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "stream",
    "finish_reason",
    "trace_id",
    "client_disconnected",
    "cache_hit",
    "cache_lookup",
    "retries",
)


def bench_slos() -> list[SLO]:
    return parse_specs(SPECS, "bench")


def bounds_for(slos: list[SLO]) -> dict[str, tuple[float, ...]]:
    extra = thresholds_by_ledger_metric(slos)
    return {m: with_thresholds(b, extra.get(m, ())) for m, b in DEFAULT_BUCKETS.items()}


def bucket_probs(metric: str, bounds: tuple[float, ...]) -> np.ndarray:
    """P(value in (prev, le]) per bound, plus the overflow above the last bound."""
    med, sigma = DISTS[metric]
    cdf = [0.5 * (1 + math.erf(math.log(b / med) / (sigma * math.sqrt(2)))) for b in bounds]
    p = np.diff([0.0, *cdf, 1.0])
    return np.clip(p, 0, None) / p.sum()


def fmt_ts(dialect: str, epoch_s: np.ndarray) -> list[Any]:
    """Timestamps as each backend's driver stores them (SQLite: SQLAlchemy's naive UTC text)."""
    if dialect == "sqlite":
        base = np.datetime64("1970-01-01T00:00:00", "us")
        ts = base + (np.asarray(epoch_s) * 1e6).astype("timedelta64[us]")
        return [s.replace("T", " ") for s in np.datetime_as_string(ts, unit="us")]
    return [datetime.fromtimestamp(float(s), tz=timezone.utc) for s in epoch_s]


# --- rollups ----------------------------------------------------------------------------------


def rollup_days(
    days: int, per_day: int, bounds: dict[str, tuple[float, ...]], seed: int, dialect: str
) -> Iterator[tuple[list[tuple], list[tuple]]]:
    """(rollup rows, bucket rows) for each day, oldest first."""
    rng = np.random.default_rng(seed)
    start_min = to_minute(T_END) - days * 1440
    lam = np.array([w for *_, w in SCOPES]) * per_day / 1440
    p_out = np.array([p for *_, p in OUTCOMES])
    probs = {m: bucket_probs(m, bounds[m]) for m in DISTS}
    for day in range(days):
        minutes = start_min + day * 1440 + np.arange(1440)
        stamps = fmt_ts(dialect, minutes * 60)
        n = rng.poisson(lam, size=(1440, len(SCOPES)))
        by_outcome = rng.multinomial(n, p_out)  # (minute, scope, outcome)
        rollups: list[tuple] = []
        buckets: list[tuple] = []
        for oi, (sc, et, _) in enumerate(OUTCOMES):
            k = by_outcome[:, :, oi]
            ok = sc == "2xx"
            flagged = rng.binomial(k, 0.01)
            blocked = rng.binomial(flagged, 0.2)
            incidents_in = rng.binomial(flagged, 0.5)
            incidents_out = rng.binomial(flagged - incidents_in, 0.8)
            cache = rng.binomial(k, 0.05)
            for mi, si in zip(*np.nonzero(k), strict=True):
                c = int(k[mi, si])
                t, a, v, _ = SCOPES[si]
                rollups.append(
                    (
                        stamps[mi],
                        t,
                        a,
                        v,
                        "chat",
                        sc,
                        et,
                        c,
                        c * 420,
                        c * 180 if ok else 0,
                        c * 0.0016 if ok else 0.0,
                        c * (1.3 if ok else 0.1),
                        c * 0.3 if ok else 0.0,
                        c if ok else 0,
                        c * 0.032 if ok else 0.0,
                        c if ok else 0,
                        int(flagged[mi, si]),
                        int(blocked[mi, si]),
                        0,
                        int(cache[mi, si]),
                        int(incidents_in[mi, si]),
                        int(incidents_out[mi, si]),
                        int(cache[mi, si]),
                    )
                )
        ok_n = by_outcome[:, :, 0]
        for metric, p in probs.items():
            counts = rng.multinomial(ok_n, p)[:, :, :-1]  # the overflow has no bucket row
            for mi, si, bi in zip(*np.nonzero(counts), strict=True):
                t, a, v, _ = SCOPES[si]
                buckets.append((stamps[mi], t, a, v, "2xx", metric, bounds[metric][bi], int(counts[mi, si, bi])))
        for sc, le in ERROR_LATENCY.items():
            errs = sum(by_outcome[:, :, oi] for oi, o in enumerate(OUTCOMES) if o[0] == sc and o[1] != "timeout")
            for mi, si in zip(*np.nonzero(errs), strict=True):
                t, a, v, _ = SCOPES[si]
                buckets.append((stamps[mi], t, a, v, sc, "latency", le, int(errs[mi, si])))
        yield rollups, buckets


def raw_chunks(rows: int, days: int, bounds_seed: int, dialect: str, chunk: int = 100_000) -> Iterator[list[tuple]]:
    """`rows` raw request rows spread uniformly over the days, with the rollups' mix."""
    rng = np.random.default_rng(bounds_seed + 1)
    t0 = T_END.timestamp() - days * 86400
    w = np.array([s[3] for s in SCOPES])
    p_out = np.array([p for *_, p in OUTCOMES])
    codes = {"": 200, "invalid_request": 400, "rate_limited": 429, "upstream_error": 502, "timeout": 504}
    done = 0
    while done < rows:
        n = min(chunk, rows - done)
        ts = np.sort(t0 + rng.random(n) * days * 86400)
        stamps = fmt_ts(dialect, ts)
        scope = rng.choice(len(SCOPES), size=n, p=w / w.sum())
        outcome = rng.choice(len(OUTCOMES), size=n, p=p_out)
        lat = np.exp(np.log(DISTS["latency"][0]) + DISTS["latency"][1] * rng.standard_normal(n))
        ttft = np.exp(np.log(DISTS["ttft"][0]) + DISTS["ttft"][1] * rng.standard_normal(n))
        tpot = np.exp(np.log(DISTS["tpot"][0]) + DISTS["tpot"][1] * rng.standard_normal(n))
        out = []
        for i in range(n):
            t, a, v, _ = SCOPES[scope[i]]
            sc, et, _ = OUTCOMES[outcome[i]]
            ok = sc == "2xx"
            out.append(
                (
                    f"raw-{done + i:09d}",
                    stamps[i],
                    t,
                    f"iw-{t}",
                    "chat",
                    a,
                    v,
                    "http://worker:8001",
                    codes[et],
                    sc,
                    et or None,
                    float(lat[i]) if ok else 0.1,
                    float(ttft[i]) if ok else None,
                    float(tpot[i]) if ok else None,
                    420,
                    180 if ok else 0,
                    0.0016 if ok else 0.0,
                    False,
                    "stop" if ok else None,
                    None,
                    False,
                    False,
                    False,
                    0,
                )
            )
        done += n
        yield out


# --- loading ----------------------------------------------------------------------------------


def _insert_sql(table: str, cols: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"


class Loader:
    def __init__(self, url: str) -> None:
        self.url = url
        self.dialect = make_url(url).get_backend_name()
        if self.dialect == "sqlite":
            self.db = sqlite3.connect(make_url(url).database)
            self.db.execute("PRAGMA synchronous = OFF")
        else:
            import psycopg

            u = make_url(url)
            self.db = psycopg.connect(host=u.host, port=u.port, user=u.username, dbname=u.database)

    def load(self, table: str, cols: tuple[str, ...], rows: list[tuple]) -> None:
        if self.dialect == "sqlite":
            self.db.executemany(_insert_sql(table, cols), rows)
            self.db.commit()
            return
        with self.db.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
            for r in rows:
                cp.write_row(r)
        self.db.commit()

    def analyze(self) -> None:
        if self.dialect == "sqlite":
            self.db.execute("ANALYZE")
            self.db.commit()
        else:
            self.db.autocommit = True
            self.db.execute("VACUUM ANALYZE")

    def build_hours(self) -> None:
        """The hourly rollups summed from the minute ones, as migration 0005 fills them."""
        hour = (
            "(date_trunc('hour', minute AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"
            if self.dialect != "sqlite"
            else "strftime('%Y-%m-%d %H:00:00.000000', minute)"
        )
        keys = ", ".join(ROLLUP_COLS[1:7])
        values = ROLLUP_COLS[7:]
        bkeys = ", ".join(BUCKET_COLS[1:7])
        self.db.execute("DELETE FROM request_rollups_hour")
        self.db.execute("DELETE FROM request_rollup_buckets_hour")
        self.db.execute(
            f"INSERT INTO request_rollups_hour (hour, {keys}, {', '.join(values)}) "
            f"SELECT {hour}, {keys}, {', '.join(f'SUM({v})' for v in values)} "
            f"FROM request_rollups_minute GROUP BY {hour}, {keys}"
        )
        self.db.execute(
            f"INSERT INTO request_rollup_buckets_hour (hour, {bkeys}, count) "
            f"SELECT {hour}, {bkeys}, SUM(count) FROM request_rollup_buckets_minute "
            f"GROUP BY {hour}, {bkeys}"
        )
        self.db.commit()

    def count(self, table: str) -> int:
        return int(self.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    def close(self) -> None:
        self.db.close()


def populate(url: str, args: argparse.Namespace, slos: list[SLO], console: Console) -> dict[str, int]:
    migrate(url)
    loader = Loader(url)
    bounds = bounds_for(slos)
    cols = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*cols, console=console, transient=False) as prog:
        task = prog.add_task(f"[{loader.dialect}] rollups, days", total=args.days)
        for rollups, buckets in rollup_days(args.days, args.per_day, bounds, args.seed, loader.dialect):
            loader.load("request_rollups_minute", ROLLUP_COLS, rollups)
            loader.load("request_rollup_buckets_minute", BUCKET_COLS, buckets)
            prog.advance(task)
        if args.raw_rows:
            task = prog.add_task(f"[{loader.dialect}] raw rows", total=args.raw_rows)
            for chunk in raw_chunks(args.raw_rows, args.days, args.seed, loader.dialect):
                loader.load("requests", RAW_COLS, chunk)
                prog.advance(task, len(chunk))
    loader.build_hours()
    loader.analyze()
    counts = {t: loader.count(t) for t in TABLES}
    loader.close()
    return counts


# --- evaluation -------------------------------------------------------------------------------


TABLES = (
    "request_rollups_minute",
    "request_rollup_buckets_minute",
    "request_rollups_hour",
    "request_rollup_buckets_hour",
    "requests",
)


def _raw_minute(dialect: str) -> str:
    if dialect == "sqlite":
        return "(CAST(strftime('%s', started_at) AS INTEGER) / 60)"
    return "CAST(FLOOR(EXTRACT(EPOCH FROM started_at) / 60) AS BIGINT)"


def raw_series(conn: Any, dialect: str, slo: SLO, start: datetime, end: datetime) -> MinuteSeries:
    """The SLO's per-minute (good, total) computed by SQL over raw request rows."""
    em = _raw_minute(dialect)
    where = ["started_at >= :start", "started_at < :end"]
    params: dict[str, Any] = {"start": start, "end": end}
    for col, values in (
        ("alias", slo.selector.model_alias),
        ("model_version", slo.selector.model_version),
        ("tenant", slo.selector.tenant),
    ):
        if values:
            names = [f"{col}_{i}" for i in range(len(values))]
            where.append(f"{col} IN ({', '.join(':' + n for n in names)})")
            params.update(zip(names, values, strict=True))
    sli = slo.sli
    if isinstance(sli, AvailabilitySLI):
        sql = (
            f"SELECT {em}, SUM(CASE WHEN status_class = '5xx' THEN 0 ELSE 1 END), COUNT(*) FROM requests "
            f"WHERE {' AND '.join(where)} AND status_class != '4xx' GROUP BY 1"
        )
    elif isinstance(sli, LatencySLI):
        col = {"latency": "latency_s", "ttft": "ttft_s", "tpot": "tpot_s"}[sli.metric.ledger_metric]
        sql = (
            f"SELECT {em}, SUM(CASE WHEN {col} <= :thr THEN 1 ELSE 0 END), COUNT({col}) FROM requests "
            f"WHERE {' AND '.join(where)} AND status_class = '2xx' GROUP BY 1"
        )
        params["thr"] = sli.threshold_s
    elif isinstance(sli, CostSLI):
        sql = (
            f"SELECT {em}, COUNT(*) * :b / 1000.0 - SUM(cost_usd), COUNT(*) * :b / 1000.0 FROM requests "
            f"WHERE {' AND '.join(where)} GROUP BY 1"
        )
        params["b"] = sli.budget_usd_per_1k_requests
    else:
        raise NotImplementedError(slo.kind)
    if dialect == "sqlite":  # stored as naive UTC text
        params["start"] = start.replace(tzinfo=None).isoformat(" ", "microseconds")
        params["end"] = end.replace(tzinfo=None).isoformat(" ", "microseconds")
    rows = conn.execute(text(sql), params).all()
    if not rows:
        return MinuteSeries.from_points([])
    m, g, t = zip(*rows, strict=True)
    return MinuteSeries.from_arrays(
        np.asarray(m, dtype=np.int64), np.asarray(g, dtype=float), np.asarray(t, dtype=float)
    )


def evaluate_raw(engine: Engine, slos: list[SLO], now: datetime) -> list[Any]:
    at = to_minute(now)
    out = []
    with engine.connect() as conn:
        for slo in slos:
            s, e = fetch_bounds(slo, at)
            series = raw_series(
                conn,
                engine.dialect.name,
                slo,
                datetime.fromtimestamp(s * 60, timezone.utc),
                datetime.fromtimestamp(e * 60, timezone.utc),
            )
            out.append(evaluate(slo, series, now=at))
    return out


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t) * 1000)
    return times, result


def run_backend(url: str, args: argparse.Namespace, console: Console, *, reuse: bool = False) -> dict[str, Any]:
    slos = bench_slos()
    t = time.perf_counter()
    if reuse:
        migrate(url)  # a file from before migration 0005 gets its hourly rollups here
        loader = Loader(url)
        if not loader.count("request_rollups_hour"):
            loader.build_hours()
            loader.analyze()
        counts = {t: loader.count(t) for t in TABLES}
        loader.close()
    else:
        counts = populate(url, args, slos, console)
    gen_s = time.perf_counter() - t
    engine = create_engine_for(url)
    now = T_END
    try:
        cold_ms, statuses = timed(lambda: SLOService(engine, slos, cache=False).evaluate_all(now), args.repeat)
        bad = [s.slo.name for s in statuses if s.evaluation is None]
        if bad:
            raise RuntimeError(f"not evaluated: {bad}")

        def minutes_only() -> dict[SLO, Any]:
            with engine.connect() as conn:
                return evaluate_ledger_many(conn, slos, now, hourly=False)

        cold_min_ms, by_minutes = timed(minutes_only, args.repeat)
        mismatch = [st.slo.name for st in statuses if not _same_eval(st.evaluation, by_minutes[st.slo])]
        if mismatch:
            raise RuntimeError(f"hourly and minute reads differ: {mismatch}")
        steps = iter(range(1, 10_000))
        cached: dict[str, Any] = {}
        for name, hourly in (("hourly", True), ("minutes", False)):
            svc = SLOService(engine, slos, cache=SeriesCache(hourly=hourly))
            first_ms, _ = timed(lambda: svc.evaluate_all(now), 1)  # noqa: B023
            warm_ms, _ = timed(
                lambda: svc.evaluate_all(now + timedelta(seconds=30 * next(steps))),  # noqa: B023
                args.repeat * 4,
            )
            late = SLOService(engine, slos, cache=SeriesCache(late_every_s=0, hourly=hourly))  # goes back 3 hours
            late.evaluate_all(now)
            late_ms, _ = timed(
                lambda: late.evaluate_all(now + timedelta(seconds=30 * next(steps))),  # noqa: B023
                args.repeat,
            )
            cached[name] = (first_ms, warm_ms, late_ms)
        raw_ms, raw = timed(lambda: evaluate_raw(engine, slos, now), max(1, args.repeat // 2))
    finally:
        engine.dispose()
    scale = (args.per_day * args.days) / max(args.raw_rows, 1)
    raw_med = statistics.median(raw_ms)
    return {
        "backend": engine.dialect.name,
        "days": args.days,
        "requests_per_day": args.per_day,
        "slos": len(slos),
        "rows": counts,
        "generate_s": round(gen_s, 1),
        "rollups_cold_ms": {"median": round(statistics.median(cold_ms), 1), "min": round(min(cold_ms), 1)},
        "rollups_cold_minutes_only_ms": {
            "median": round(statistics.median(cold_min_ms), 1),
            "min": round(min(cold_min_ms), 1),
        },
        **{
            f"rollups_{k}{'' if name == 'hourly' else '_minutes_only'}_ms": v
            for name, (first, warm, late) in cached.items()
            for k, v in (
                ("first_cached", round(first[0], 1)),
                ("warm", {"median": round(statistics.median(warm), 2), "max": round(max(warm), 2)}),
                ("warm_late_reread", round(statistics.median(late), 1)),
            )
        },
        "raw_ms_measured": {"rows": counts["requests"], "median": round(raw_med, 1)},
        "raw_ms_extrapolated": {
            "rows": args.per_day * args.days,
            "ms": round(raw_med * scale, 0),
            "note": f"measured x {scale:.0f}, assuming time linear in rows",
        },
        # the raw rows are a sample of the same mix: their SLIs should be close to the rollups'
        "sli_rollups_vs_raw": {
            st.slo.name: [_r(st.sli), _r(e.sli)] for st, e in zip(statuses, raw, strict=True) if st.slo.bounded
        },
    }


def _same_eval(a: Any, b: Any) -> bool:
    """Two evaluations of the same SLO agree (float sums in another order aside)."""
    nums = lambda e: [e.good, e.total, *(x for w in e.windows.values() for x in (w.good, w.total))]  # noqa: E731
    return a.status == b.status and all(
        math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9) for x, y in zip(nums(a), nums(b), strict=True)
    )


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 5)


def print_result(r: dict[str, Any], console: Console) -> None:
    t = Table(title=f"{r['backend']}: {r['slos']} SLOs, {r['days']} days at {r['requests_per_day']:,} requests/day")
    t.add_column("what")
    t.add_column("hourly + minutes", justify="right")
    t.add_column("minutes only", justify="right")
    t.add_column("notes")
    rows = r["rows"]
    m = "_minutes_only"
    t.add_row(
        "rollups, cold (whole period, one pass)",
        f"{r['rollups_cold_ms']['median']:.0f} ms",
        f"{r['rollups_cold' + m + '_ms']['median']:.0f} ms",
        "median",
    )
    t.add_row(
        "rollups, first cached read (full)",
        f"{r['rollups_first_cached_ms']:.0f} ms",
        f"{r['rollups_first_cached' + m + '_ms']:.0f} ms",
        "once, then every 6 hours",
    )
    t.add_row(
        "rollups, warm (the 30 s job)",
        f"{r['rollups_warm_ms']['median']:.1f} ms",
        f"{r['rollups_warm' + m + '_ms']['median']:.1f} ms",
        f"median; max {r['rollups_warm_ms']['max']:.1f} / {r['rollups_warm' + m + '_ms']['max']:.1f} ms; "
        "re-reads the last 10 minutes",
    )
    t.add_row(
        "rollups, warm, late re-read",
        f"{r['rollups_warm_late_reread_ms']:.0f} ms",
        f"{r['rollups_warm_late_reread' + m + '_ms']:.0f} ms",
        "median; every 10 minutes: the last 3 hours",
    )
    t.add_row("raw rows, measured", f"{r['raw_ms_measured']['median']:.0f} ms", "", f"{rows['requests']:,} rows")
    t.add_row(
        "raw rows, EXTRAPOLATED",
        f"{r['raw_ms_extrapolated']['ms']:.0f} ms",
        "",
        f"{r['raw_ms_extrapolated']['rows']:,} rows: {r['raw_ms_extrapolated']['note']}",
    )
    console.print(t)
    console.print(
        f"rows: {rows['request_rollups_minute']:,} minute rollups, "
        f"{rows['request_rollup_buckets_minute']:,} minute buckets, {rows['request_rollups_hour']:,} hour "
        f"rollups, {rows['request_rollup_buckets_hour']:,} hour buckets, {rows['requests']:,} raw"
    )
    console.print(f"generation and load: {r['generate_s']} s; target: at most 200 ms from rollups")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--per-day", type=int, default=1_000_000)
    ap.add_argument("--raw-rows", type=int, default=1_000_000, help="raw request rows (scaled down)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--sqlite-file", type=Path, help="keep the SQLite ledger here; an existing file is reused as it is")
    ap.add_argument("--json", action="store_true", help="print one JSON object (progress goes to stderr)")
    args = ap.parse_args()
    console = Console(stderr=args.json)
    results = []
    with tempfile.TemporaryDirectory(prefix="iw-slo-bench-") as tmp:
        path = args.sqlite_file or Path(tmp) / "ledger.db"
        results.append(run_backend(f"sqlite:///{path.resolve()}", args, console, reuse=path.exists()))
        bin_dir = None if args.no_postgres else find_pg_bin()
        if bin_dir is not None:
            pg = TempPostgres(bin_dir)
            try:
                pg.start()
                results.append(run_backend(pg.create_database("slo_bench"), args, console))
            finally:
                pg.close()
        elif not args.no_postgres:
            console.print("PostgreSQL binaries not found: SQLite only")
    if args.json:
        print(json.dumps({"results": results}, indent=2))
    else:
        for r in results:
            print_result(r, console)


if __name__ == "__main__":
    main()
