"""Per-SLO minute series kept between evaluations, so a 30 s job re-reads minutes, not months.

Reading a whole period from the rollups costs seconds at a million requests a day (every
rollup and bucket row of 30 days); the minutes since the last evaluation cost milliseconds.
Rollup minutes can still change after they were read, so each read also goes back:

- `settle_minutes` every time: the last minutes still grow while the writer's batches land;
- `late_minutes` every `late_every_s`: a spool replayed after a short database outage adds to
  the minutes its records started in;
- everything every `full_refresh_s`, and from the time of the first failed read once reads
  succeed again (`invalidate_from`): a long outage.

A full read takes the hours of the period that no window starts in from the hourly rollups
(`slo.source.hour_spans`), planned to stay exact for evaluations up to `horizon_minutes` later;
past that, the next read is a full one again. Re-reads that would split such an hour start at
the hour.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from ledger.queries import Conn
from slo.evaluator import MinuteSeries
from slo.model import SLO
from slo.source import as_datetime, floor_hour, hour_spans, ledger_series_many


@dataclass
class _Entry:
    series: MinuteSeries  # dense over [series.start, fetched_until)
    fetched_until: int
    refreshed_at: float  # clock time of the last full read
    late_at: float  # clock time of the last read that went back late_minutes
    exact_until: int  # the last evaluation minute the series' hourly sums are exact for
    hours_until: int  # before this minute the series may hold whole hours at their first minute


def _dense(s: MinuteSeries, begin: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """(good, total) of `s` for every minute in [begin, end), zeros outside the series."""
    g, t = np.zeros(max(end - begin, 0)), np.zeros(max(end - begin, 0))
    a, b = max(begin, s.start), min(end, s.end)
    if b > a:
        g[a - begin : b - begin] = s.good[a - s.start : b - s.start]
        t[a - begin : b - begin] = s.total[a - s.start : b - s.start]
    return g, t


class SeriesCache:
    """Thread-safe; one per `SLOService`. Entries are keyed by the SLO itself, so a changed
    spec under the same name starts over."""

    def __init__(
        self,
        settle_minutes: int = 10,
        late_minutes: int = 180,
        late_every_s: float = 600.0,
        full_refresh_s: float = 6 * 3600.0,
        clock: Callable[[], float] = time.monotonic,
        hourly: bool = True,
        horizon_minutes: int | None = None,
    ) -> None:
        """`hourly=False` reads minutes only. `horizon_minutes` (default: `full_refresh_s`,
        at most a day) is how far a full read plans ahead."""
        self.hourly = hourly
        self.horizon_minutes = min(math.ceil(full_refresh_s / 60), 1440) if horizon_minutes is None else horizon_minutes
        self.settle_minutes = settle_minutes
        self.late_minutes = late_minutes
        self.late_every_s = late_every_s
        self.full_refresh_s = full_refresh_s
        self._clock = clock
        self._entries: dict[SLO, _Entry] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def invalidate_from(self, minute: int) -> None:
        """Re-read every SLO from `minute` on at its next read (e.g. where reads started failing)."""
        with self._lock:
            for e in self._entries.values():
                e.fetched_until = min(e.fetched_until, minute)  # the next read starts settle_minutes earlier

    def series(self, conn: Conn, slo: SLO, start: int, end: int) -> MinuteSeries:
        """The SLO's dense series over epoch minutes [start, end)."""
        return self.series_many(conn, {slo: (start, end)})[slo]

    def series_many(self, conn: Conn, wants: Mapping[SLO, tuple[int, int]]) -> dict[SLO, MinuteSeries]:
        """Dense series over [start, end) epoch minutes for each SLO, from one read of the
        ledger over the union of what each SLO needs re-read."""
        with self._lock:  # held while reading, so an invalidation cannot be overwritten
            return self._series_many(conn, wants)

    def _needs_from(self, slo: SLO, start: int, end: int, now: float) -> int:
        """The first minute the SLO must re-read."""
        e = self._entries.get(slo)
        if (
            e is None
            or e.series.start > start
            or e.fetched_until > end
            or end > e.exact_until
            or now - e.refreshed_at >= self.full_refresh_s
        ):
            return start
        back = self.late_minutes if now - e.late_at >= self.late_every_s else self.settle_minutes
        n = min(e.fetched_until - back, end)
        if n < e.hours_until:
            n = floor_hour(n)  # an hour kept whole must not be read again in part
        return max(start, n)

    def _series_many(self, conn: Conn, wants: Mapping[SLO, tuple[int, int]]) -> dict[SLO, MinuteSeries]:
        if not wants:
            return {}
        now = self._clock()
        begin = min(self._needs_from(slo, s, e, now) for slo, (s, e) in wants.items())
        end = max(e for _, e in wants.values())
        spans = hour_spans(wants, begin, end, self.horizon_minutes) if self.hourly else []
        fresh = ledger_series_many(conn, wants, as_datetime(begin), as_datetime(end), hours=spans)
        spans_until = max((b for _, b in spans), default=0)
        out = {}
        for slo, (start, stop) in wants.items():
            old = self._entries.get(slo)
            b = max(start, begin)  # everything from `begin` on was just read
            og, ot = _dense(old.series, start, b) if old is not None else (np.zeros(b - start), np.zeros(b - start))
            ng, nt = _dense(fresh[slo], b, stop)
            horizon = self.horizon_minutes if self.hourly else 1 << 40  # minutes alone stay exact
            if old is None or b == start:  # a full read
                refreshed_at, late_at = now, now
                exact, hours_until = stop + horizon, spans_until
            else:
                refreshed_at = old.refreshed_at
                late_at = now if old.fetched_until - b >= self.late_minutes else old.late_at
                exact, hours_until = min(old.exact_until, stop + horizon), max(old.hours_until, spans_until)
            entry = _Entry(
                MinuteSeries(start, np.concatenate([og, ng]), np.concatenate([ot, nt])),
                stop,
                refreshed_at,
                late_at,
                exact,
                hours_until,
            )
            self._entries[slo] = entry
            out[slo] = entry.series
        return out
