"""SLOService: evaluates the SLOs from the ledger, keeps their history, gauges and notifications.

One service per process. `run_once()` is the scheduled job's body: evaluate, notify on alert
state changes, record history, update gauges; it never raises. The API and the CLI call
`evaluate_all()` and `history()`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from slo import history as hist
from slo.cache import SeriesCache
from slo.gauges import SLOGauges
from slo.evaluator import Evaluation, to_minute
from slo.model import PROMETHEUS_SLIS, SLO
from slo.prometheus_source import PrometheusError, evaluate_prometheus
from slo.source import Group, evaluate_ledger_groups, unsupported_reason
from slo.status import SLOStatus

log = logging.getLogger(__name__)

REREAD_AFTER_RECOVERY = timedelta(minutes=10)  # spools replay within this once the database is back


class Notifier(Protocol):
    def notify(self, statuses: Iterable[SLOStatus], now: datetime | None = None) -> dict[str, dict[str, Any]]: ...
    def restore(self, states: Any) -> None: ...


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


class SLOService:
    def __init__(
        self,
        engine: Engine,
        slos: Sequence[SLO],
        notifier: Notifier | None = None,
        *,
        registry: CollectorRegistry | None = None,
        cache: SeriesCache | None | bool = True,
        clock: Callable[[], datetime] | None = None,
        prometheus_url: str | None = None,
    ) -> None:
        """`registry`: where the `slo_*` gauges go (none without one). `cache`: a SeriesCache,
        True for a default one, False to read every evaluation's full range from the ledger.
        `clock`: the time of an evaluation without an explicit `now` (default: the UTC time).
        `prometheus_url`: where SLIs on any metric (events, raw) are evaluated; without it they
        report status `unsupported`, saying so."""
        ids = [s.id for s in slos]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate SLO ids: {dupes}")
        self.engine = engine
        self.slos = list(slos)
        self.notifier = notifier
        self.gauges = SLOGauges(registry, self.slos) if registry is not None else None
        self.cache = SeriesCache() if cache is True else (cache or None)
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.prometheus_url = prometheus_url
        self._lock = threading.Lock()  # one evaluation at a time: the job, API requests and the cache
        self._latest: dict[str, SLOStatus] = {}
        self._failing_since: int | None = None  # epoch minute of the first failed evaluation
        self._reread: tuple[int, datetime] | None = None  # (from minute, until) after a recovery

    def get(self, name: str) -> SLO | None:
        """An SLO by name, or by id (`service-name`) when names repeat across services."""
        for s in self.slos:
            if s.id == name:
                return s
        named = [s for s in self.slos if s.name == name]
        return named[0] if len(named) == 1 else None

    def evaluate_all(self, now: datetime | None = None, slos: Iterable[SLO] | None = None) -> list[SLOStatus]:
        """Current status of every SLO (or of `slos`); an SLO the ledger cannot evaluate gets
        status `unsupported`, and a failing evaluation (database down) status `error`."""
        at = _utc(now if now is not None else self.clock())
        targets = list(self.slos if slos is None else slos)
        with self._lock:
            self._before_reads(at)
            out = self._evaluate(targets, at)
            self._track_failures(out, at)
            self._latest.update((st.slo.id, st) for st in out)
        return out

    def _evaluate(self, targets: list[SLO], at: datetime) -> list[SLOStatus]:
        queried = [s for s in targets if self.prometheus_url and isinstance(s.sli, PROMETHEUS_SLIS)]
        reasons = {s: unsupported_reason(s) for s in targets if s not in queried}
        readable = [s for s in reasons if reasons[s] is None]
        evals: dict[SLO, dict[Group, Evaluation]] = {}
        error = ""
        try:
            if readable:
                with self.engine.connect() as conn:
                    evals = evaluate_ledger_groups(conn, readable, at, cache=self.cache)
        except Exception as e:  # noqa: BLE001 - reported per SLO, never raised
            error = _describe(e)
            log.warning("SLO evaluation failed: %s", error)
        out = []
        for s in targets:
            if s in queried:
                out.append(self._from_prometheus(s, at))
                continue
            reason = reasons[s]
            if reason is not None:
                out.append(SLOStatus.unsupported(s, at, reason))
            elif s in evals:
                out.append(_worst(s, at, evals[s]))
            else:
                out.append(SLOStatus.error(s, at, error))
        return out

    def _from_prometheus(self, slo: SLO, at: datetime) -> SLOStatus:
        """The status of an events or raw SLO from Prometheus: its worst group when grouped."""
        assert self.prometheus_url is not None
        try:
            groups = evaluate_prometheus(slo, self.prometheus_url, at)
        except PrometheusError as e:
            log.warning("SLO %s: Prometheus evaluation failed: %s", slo.id, e)
            return SLOStatus(slo, at, None, f"Prometheus: {e}"[:500], failed=True)
        return _worst(slo, at, groups)

    def _track_failures(self, statuses: list[SLOStatus], at: datetime) -> None:
        """After the ledger was unreachable, keep re-reading from then for `REREAD_AFTER_RECOVERY`:
        the writers' spools replay the records of that time into minutes already read."""
        if any(_ledger_failed(st) for st in statuses):
            if self._failing_since is None:
                self._failing_since = to_minute(at)
        elif self._failing_since is not None:
            self._reread = (self._failing_since, at + REREAD_AFTER_RECOVERY)
            self._failing_since = None

    def _before_reads(self, at: datetime) -> None:
        if self._reread is not None and self.cache is not None:
            since, until = self._reread
            if at < until:
                self.cache.invalidate_from(since)
            else:
                self._reread = None

    def current(self, slos: Iterable[SLO] | None = None, max_age_s: float = 90.0) -> list[SLOStatus]:
        """The latest statuses (of the job) when none is older than `max_age_s`, else a new
        evaluation. With the job running, API requests then never wait for its reads (a full
        re-read of 30 days takes seconds); before its first run they wait for it."""
        targets = list(self.slos if slos is None else slos)
        now = _utc(self.clock())
        latest = [self._latest.get(s.id) for s in targets]
        if all(
            st is not None and st.slo == s and 0 <= (now - st.evaluated_at).total_seconds() <= max_age_s
            for st, s in zip(latest, targets, strict=True)
        ):
            return latest  # type: ignore[return-value]
        return self.evaluate_all(now, targets)

    def notify(self, statuses: Sequence[SLOStatus], *, restore: bool = True) -> dict[str, dict[str, Any]]:
        """Hand alert states to the notifier, after taking over (with `restore`) the states the
        newest history rows say were delivered, by a previous run of this or another replica."""
        if self.notifier is None or not statuses:
            return {}
        if restore:
            try:
                with self.engine.connect() as conn:
                    self.notifier.restore(hist.last_notifications(conn, [s.slo for s in statuses]))
            except Exception as e:  # noqa: BLE001 - keep the in-memory state
                log.warning("SLO notifier: cannot read the last delivered states: %s", e)
        return self.notifier.notify(statuses, statuses[0].evaluated_at)

    def record_history(
        self, statuses: Sequence[SLOStatus], notifications: dict[str, dict[str, Any]] | None = None
    ) -> int:
        """Insert one `slo_status` row per status; returns the number of rows."""
        with self.engine.begin() as conn:
            return hist.record(conn, statuses, notifications)

    def history(self, name: str, since: datetime | None = None, limit: int = 100) -> list[hist.HistoryEntry]:
        """Recorded evaluations of one SLO, newest first."""
        slo = self.get(name)
        if slo is None:
            raise KeyError(name)
        with self.engine.connect() as conn:
            return hist.entries(conn, slo, since=_utc(since) if since else None, limit=limit)

    def prune_history(self, before: datetime) -> int:
        with self.engine.begin() as conn:
            return hist.prune(conn, _utc(before))

    def update_gauges(self, statuses: Iterable[SLOStatus]) -> None:
        if self.gauges is not None:
            self.gauges.update(statuses)

    def run_once(self, now: datetime | None = None) -> list[SLOStatus]:
        """Evaluate, notify, record history and update gauges; logs failures, never raises."""
        try:
            statuses = self.evaluate_all(now)
        except Exception:
            log.exception("SLO evaluation failed")
            return []
        ledger_down = any(_ledger_failed(st) for st in statuses)  # already logged: skip its reads and writes
        notes: dict[str, dict[str, Any]] = {}
        try:
            notes = self.notify(statuses, restore=not ledger_down)  # pending sends are retried anyway
        except Exception:
            log.exception("SLO notifications failed")
        if not ledger_down:
            try:
                self.record_history(statuses, notes)
            except Exception as e:  # noqa: BLE001
                log.warning("SLO history not recorded: %s", e)
        try:
            self.update_gauges(statuses)
        except Exception:
            log.exception("SLO gauges not updated")
        return statuses


_RANK = {"page": 3, "ticket": 2, "no_data": 0, "ok": 1}


def _worst(slo: SLO, at: datetime, groups: dict[Group, Evaluation]) -> SLOStatus:
    """The status of a grouped SLO is its worst group's (the reason names it)."""
    worst, ev = max(groups.items(), key=lambda kv: (_RANK[kv[1].status], kv[1].current_burn_rate or 0.0))
    reason = (f"worst of {len(groups)} groups: " + ", ".join(f"{k}={v}" for k, v in worst)) if worst else None
    return SLOStatus(slo, at, ev, reason)


def _ledger_failed(st: SLOStatus) -> bool:
    """The ledger failed this evaluation (a Prometheus SLI failing says nothing of the ledger)."""
    return st.failed and not isinstance(st.slo.sli, PROMETHEUS_SLIS)


def _describe(e: BaseException) -> str:
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {first}"[:500]
