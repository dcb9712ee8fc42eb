"""`inferwatch_canary_score` and `inferwatch_canary_verdict`: the current verdict of each canary,
read from the ledger's analyses at scrape time, so every gateway replica exports the same.

"Current" is the latest analysis of each (alias, canary version) that is still running or
finished within `recent`; older ones drop out rather than show a stale verdict forever.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ledger.models import CanaryAnalysisRow

log = logging.getLogger("inferwatch.canary")

VERDICTS = ("pass", "marginal", "fail", "inconclusive")
LABELS = ["model_alias", "canary_version"]


def families() -> list[GaugeMetricFamily]:
    """The two families, empty: what the collector exports, known without a database."""
    return [
        GaugeMetricFamily("inferwatch_canary_score", "Latest canary judge score, 0-100.", labels=LABELS),
        GaugeMetricFamily(
            "inferwatch_canary_verdict",
            "1 for the canary's current verdict (pass, marginal, fail, inconclusive).",
            labels=[*LABELS, "verdict"],
        ),
    ]


class CanaryGauges(Collector):
    def __init__(
        self,
        engine: Engine,
        recent: timedelta = timedelta(hours=1),
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.engine = engine
        self.recent = recent
        self.clock = clock

    def register(self, registry: CollectorRegistry) -> "CanaryGauges":
        registry.register(self)
        return self

    def describe(self) -> list[GaugeMetricFamily]:  # no database query at registration
        return families()

    def current(self) -> dict[tuple[str, str], tuple[str | None, float | None]]:
        """(alias, canary) -> (verdict, score) of the latest relevant analysis."""
        since = self.clock() - self.recent
        A = CanaryAnalysisRow
        q = (
            select(A.alias, A.canary, A.verdict, A.result)
            .where(or_(A.status == "running", A.updated_at >= since))
            .order_by(A.updated_at)
        )
        out: dict[tuple[str, str], tuple[str | None, float | None]] = {}
        with Session(self.engine) as s:
            for alias, canary, verdict, result in s.execute(q):
                score = (result or {}).get("score")
                out[(alias, canary)] = (verdict, float(score) if isinstance(score, (int, float)) else None)
        return out

    def collect(self) -> Iterator[GaugeMetricFamily]:
        score, verdict = families()
        try:
            current = self.current()
        except SQLAlchemyError as exc:  # database away: no canary series rather than a failed scrape
            log.warning("canary gauges unavailable: %s", type(exc).__name__)
            current = {}
        for (alias, canary), (v, sc) in sorted(current.items()):
            if sc is not None:
                score.add_metric([alias, canary], sc)
            for name in VERDICTS:
                verdict.add_metric([alias, canary, name], 1.0 if v == name else 0.0)
        yield score
        yield verdict
