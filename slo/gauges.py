"""`slo_*` gauges of the built-in evaluator, in a registry the caller owns.

Every series exists from the start at 0. After an evaluation, a value that is unknown (no
traffic in the window, or an SLO the ledger cannot evaluate) is NaN, never a stale number. A
failed evaluation (database down) leaves the gauges of its SLO as they were, as the notifier
keeps its alerts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Gauge

from slo.burn import WINDOWS
from slo.model import SLO
from slo.status import SLOStatus

LABELS = ("slo", "service")
SEVERITIES = ("page", "ticket")


def _value(x: float | None) -> float:
    return math.nan if x is None else x


class SLOGauges:
    def __init__(self, registry: CollectorRegistry, slos: Iterable[SLO]) -> None:
        self.sli = Gauge(
            "slo_sli_ratio",
            "SLI over the SLO period (good / valid events); NaN without traffic",
            LABELS,
            registry=registry,
        )
        self.budget = Gauge(
            "slo_error_budget_remaining_ratio",
            "Share of the period's error budget left (below 0 when overspent); NaN without traffic",
            LABELS,
            registry=registry,
        )
        self.burn = Gauge(
            "slo_burn_rate",
            "Error budget burn rate over a window (1 = spending exactly the budget)",
            (*LABELS, "window"),
            registry=registry,
        )
        self.firing = Gauge(
            "slo_alert_firing",
            "1 while the SLO's multiwindow burn-rate alert of a severity fires",
            (*LABELS, "severity"),
            registry=registry,
        )
        self.no_data = Gauge(
            "slo_no_data", "1 while the SLO has seen no traffic for its no-data time", LABELS, registry=registry
        )
        for slo in slos:
            self._create(slo)

    def _create(self, slo: SLO) -> None:
        ids = (slo.name, slo.service)
        self.sli.labels(*ids).set(0)
        self.budget.labels(*ids).set(0)
        for w in WINDOWS:
            self.burn.labels(*ids, w).set(0)
        for sev in SEVERITIES:
            self.firing.labels(*ids, sev).set(0)
        self.no_data.labels(*ids).set(0)

    def update(self, statuses: Iterable[SLOStatus]) -> None:
        for st in statuses:
            if st.failed:
                continue
            ids = (st.slo.name, st.slo.service)
            self.sli.labels(*ids).set(_value(st.sli))
            self.budget.labels(*ids).set(_value(st.budget_remaining))
            for w, rate in st.burn_rates().items():
                self.burn.labels(*ids, w).set(_value(rate))
            self.firing.labels(*ids, "page").set(int(st.page))
            self.firing.labels(*ids, "ticket").set(int(st.ticket))
            self.no_data.labels(*ids).set(int(st.no_data))
