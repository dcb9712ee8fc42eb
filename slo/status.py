"""What the service reports for one SLO at one time: an evaluation, or why there is none."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from slo.burn import WINDOWS
from slo.evaluator import AlertState, Evaluation
from slo.model import SLO

Status = Literal["ok", "ticket", "page", "no_data", "unsupported", "error"]


def finite(x: float | None) -> float | None:
    """x, or None for None, NaN and infinities (JSON has no such numbers)."""
    return None if x is None or not math.isfinite(x) else float(x)


@dataclass(frozen=True)
class SLOStatus:
    slo: SLO
    evaluated_at: datetime
    evaluation: Evaluation | None  # None when unsupported or failed
    reason: str | None = None  # why unsupported, or the error
    failed: bool = False  # the evaluation raised (e.g. the database is down)

    @classmethod
    def unsupported(cls, slo: SLO, at: datetime, reason: str) -> "SLOStatus":
        return cls(slo, at, None, reason)

    @classmethod
    def error(cls, slo: SLO, at: datetime, reason: str) -> "SLOStatus":
        return cls(slo, at, None, reason, failed=True)

    @property
    def status(self) -> Status:
        if self.evaluation is None:
            return "error" if self.failed else "unsupported"
        return self.evaluation.status  # type: ignore[return-value]

    @property
    def page(self) -> bool:
        return bool(self.evaluation and self.evaluation.page.firing)

    @property
    def ticket(self) -> bool:
        return bool(self.evaluation and self.evaluation.ticket.firing)

    @property
    def no_data(self) -> bool:
        return bool(self.evaluation and self.evaluation.no_data)

    @property
    def no_traffic(self) -> bool:
        """The opt-in no-traffic alert fires."""
        return bool(self.evaluation and self.evaluation.no_traffic)

    @property
    def sli(self) -> float | None:
        return finite(self.evaluation.sli) if self.evaluation else None

    @property
    def budget_remaining(self) -> float | None:
        return finite(self.evaluation.budget_remaining) if self.evaluation else None

    def burn_rates(self) -> dict[str, float | None]:
        """Burn rate per window (5m ... 3d); None without traffic in the window."""
        e = self.evaluation
        return {w: finite(e.windows[w].burn_rate) if e else None for w in WINDOWS}

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of the API and of `inferwatch slo status --json`."""
        s, e = self.slo, self.evaluation
        sel = {k: list(v) for k, v in s.selector.items()}
        out: dict[str, Any] = {
            "name": s.name,
            "service": s.service,
            "id": s.id,
            "kind": s.kind.value,
            "description": s.description or s.sli.describe(),
            "objective": s.objective if s.bounded else None,
            "window": s.window.describe(),
            "selector": sel,
            "evaluated_at": self.evaluated_at.isoformat(),
            "status": self.status,
            "reason": self.reason,
            "sli": self.sli,
            "error_ratio": None,
            "error_budget": s.error_budget,
            "budget_remaining": self.budget_remaining,
            "good": None,
            "total": None,
            "period_burn_rate": None,
            "current_burn_rate": None,
            "burn_rates": self.burn_rates(),
            "time_to_exhaustion_s": None,
            "alerts": {
                "page": _alert(e.page) if e else _off(s.alerting.page),
                "ticket": _alert(e.ticket) if e else _off(s.alerting.ticket),
                "no_data": {"firing": self.no_data, "after_minutes": s.alerting.no_data_after_minutes},
                "no_traffic": {
                    "enabled": s.alerting.no_traffic_after_minutes is not None,
                    "firing": self.no_traffic,
                    "after_minutes": s.alerting.no_traffic_after_minutes,
                },
            },
            "minutes_since_traffic": e.minutes_since_traffic if e else None,
        }
        if not s.bounded:
            out["budget_usd_per_1k_requests"] = s.sli.budget_usd_per_1k_requests  # type: ignore[union-attr]
            out["cost_per_1k_usd"] = finite(e.cost_per_1k_usd) if e else None
        if e is not None:
            out.update(
                error_ratio=finite(e.error_ratio),
                good=e.good,
                total=e.total,
                period_burn_rate=finite(e.period_burn_rate),
                current_burn_rate=finite(e.current_burn_rate),
                time_to_exhaustion_s=finite(e.time_to_exhaustion_s),
            )
        return out


def _alert(a: AlertState) -> dict[str, Any]:
    return {
        "enabled": a.enabled,
        "firing": a.firing,
        "windows": [
            {
                "long": r.long_window,
                "short": r.short_window,
                "factor": r.factor,
                "threshold": r.threshold,
                "firing": r.firing,
            }
            for r in a.rows
        ],
    }


def _off(enabled: bool) -> dict[str, Any]:
    return {"enabled": enabled, "firing": False, "windows": []}
