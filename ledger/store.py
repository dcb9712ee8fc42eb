"""One batch of records into the database, in the caller's transaction, idempotently."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from ledger.models import (
    Request,
    RequestRollupBucketHour,
    RequestRollupBucketMinute,
    RequestRollupHour,
    RequestRollupMinute,
    SafetyHitRow,
)
from ledger.record import RequestRecord
from ledger.rollups import BUCKET_KEY, HOUR_BUCKET_KEY, HOUR_ROLLUP_KEY, ROLLUP_KEY, ROLLUP_VALUES, increments_of

REQUESTS: Table = Request.__table__  # type: ignore[assignment]
SAFETY: Table = SafetyHitRow.__table__  # type: ignore[assignment]
ROLLUPS: Table = RequestRollupMinute.__table__  # type: ignore[assignment]
BUCKETS: Table = RequestRollupBucketMinute.__table__  # type: ignore[assignment]
HOUR_ROLLUPS: Table = RequestRollupHour.__table__  # type: ignore[assignment]
HOUR_BUCKETS: Table = RequestRollupBucketHour.__table__  # type: ignore[assignment]

_LOOKUP_CHUNK = 500
RECORD_COLUMNS = tuple(c.name for c in REQUESTS.columns if c.name != "status_class")


def check(r: RequestRecord) -> None:
    """Reject values no view can hold: a NaN would poison a rollup sum for good."""
    for name in ("latency_s", "ttft_s", "tpot_s", "cost_usd"):
        v = getattr(r, name)
        if v is not None and not math.isfinite(v):
            raise ValueError(f"record {r.request_id!r}: {name} is {v!r}")


def request_row(r: RequestRecord) -> dict[str, Any]:
    row = {name: getattr(r, name) for name in RECORD_COLUMNS}
    row["status_class"] = r.status_class
    return row


def _insert(dialect: str, table: Table) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"unsupported dialect {dialect!r}")


# The statements are built once per dialect: each build of an upsert makes an `excluded`
# alias of its table, ~180 objects in reference cycles that only the garbage collector frees.
@functools.cache
def _insert_new_stmt(dialect: str) -> Any:
    return (
        _insert(dialect, REQUESTS)
        .on_conflict_do_nothing(index_elements=["request_id"])
        .returning(REQUESTS.c.request_id)
    )


@functools.cache
def _upsert_add_stmt(dialect: str, table: Table, key: tuple[str, ...], values: tuple[str, ...]) -> Any:
    """INSERT ... ON CONFLICT (key) DO UPDATE SET v = v + excluded.v."""
    stmt = _insert(dialect, table)
    return stmt.on_conflict_do_update(index_elements=list(key), set_={v: table.c[v] + stmt.excluded[v] for v in values})


def write_records(
    conn: Connection, records: Sequence[RequestRecord], bounds: Mapping[str, Sequence[float]]
) -> list[RequestRecord]:
    """Insert request and safety rows and add their rollup increments; returns the records
    that were new. Records whose request_id is already stored are skipped entirely, so
    replaying the same records never counts them twice."""
    unique: dict[str, RequestRecord] = {}
    for r in records:
        check(r)
        unique.setdefault(r.request_id, r)
    if not unique:
        return []
    new = _insert_new(conn, unique)
    if not new:
        return []

    hits = [
        {
            "request_id": r.request_id,
            "direction": h.direction,
            "category": h.category,
            "scanner": h.scanner,
            "action": h.action,
            "score": h.score,
            "excerpt": h.excerpt,
        }
        for r in new
        for h in r.safety
    ]
    if hits:
        conn.execute(SAFETY.insert(), hits)

    inc = increments_of(new, bounds)
    _upsert_add(conn, ROLLUPS, ROLLUP_KEY, ROLLUP_VALUES, inc.rollup_rows())
    _upsert_add(conn, BUCKETS, BUCKET_KEY, ("count",), inc.bucket_rows())
    # The same increments per hour, in the same transaction: only new records reach here, so
    # the hourly rollups stay the minute ones summed, replays included.
    _upsert_add(conn, HOUR_ROLLUPS, HOUR_ROLLUP_KEY, ROLLUP_VALUES, inc.hour_rollup_rows())
    _upsert_add(conn, HOUR_BUCKETS, HOUR_BUCKET_KEY, ("count",), inc.hour_bucket_rows())
    return new


def _insert_new(conn: Connection, unique: dict[str, RequestRecord]) -> list[RequestRecord]:
    """Insert the request rows not stored yet; returns their records."""
    if conn.dialect.name == "postgresql":
        # Look first, then plain pipelined inserts: a RETURNING multi-row insert costs twice
        # the CPU (psycopg re-parses the huge statement). Should another transaction insert
        # one of these ids meanwhile, the insert fails with IntegrityError and the writer
        # retries record by record, where the lookup then sees it.
        ids = list(unique)
        stored: set[str] = set()
        for i in range(0, len(ids), _LOOKUP_CHUNK):
            chunk = ids[i : i + _LOOKUP_CHUNK]
            stored.update(conn.execute(select(REQUESTS.c.request_id).where(REQUESTS.c.request_id.in_(chunk))).scalars())
        new = [r for rid, r in unique.items() if rid not in stored]
        if new:
            conn.execute(REQUESTS.insert(), [request_row(r) for r in new])
        return new
    # SQLite: the first statement must write, so the transaction waits for the write lock
    # (busy_timeout); a read first could fail at once with SQLITE_BUSY under other writers.
    stmt = _insert_new_stmt(conn.dialect.name)
    inserted = set(conn.execute(stmt, [request_row(r) for r in unique.values()]).scalars())
    return [r for rid, r in unique.items() if rid in inserted]


def _upsert_add(
    conn: Connection, table: Table, key: Sequence[str], values: Sequence[str], rows: list[dict[str, Any]]
) -> None:
    if rows:
        conn.execute(_upsert_add_stmt(conn.dialect.name, table, tuple(key), tuple(values)), rows)
