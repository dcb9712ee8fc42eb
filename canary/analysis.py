"""A canary analysis as stored in the ledger, detached from its session, and the strict-JSON
view it is served in: what the canary service writes and the rollout controller reads."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from canary.judge import JudgeResult
from ledger.models import CanaryAnalysisRow


def jsonable(v: Any) -> Any:
    """Strict JSON: NaN as null, infinities as "inf" / "-inf" (as `MetricResult.to_dict`)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None if v != v else ("inf" if v > 0 else "-inf")
    if isinstance(v, Mapping):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return v


def iso(t: datetime | None) -> str | None:
    return None if t is None else t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Analysis:
    """A stored analysis, detached from its session."""

    id: str
    alias: str
    baseline: str
    canary: str
    profile: dict[str, Any]
    mode: str
    window_start: datetime
    window_end: datetime | None
    deadline: datetime | None
    cursor: datetime
    status: str
    verdict: str | None
    result: dict[str, Any] | None
    state: dict[str, Any] | None
    rollout_id: str | None
    step: int | None
    revision: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: CanaryAnalysisRow) -> "Analysis":
        return cls(**{f: getattr(row, f) for f in cls.__dataclass_fields__})

    @property
    def done(self) -> bool:
        return self.status == "done"

    @property
    def judge_result(self) -> JudgeResult | None:
        return JudgeResult.from_dict(self.result) if self.result else None

    def to_dict(self) -> dict[str, Any]:
        """The API's view (strict JSON)."""
        judged = self.judge_result if self.done else None
        view: dict[str, Any] = jsonable(
            {
                "id": self.id,
                "object": "canary.analysis",
                "alias": self.alias,
                "baseline": self.baseline,
                "canary": self.canary,
                "profile": self.profile.get("name"),
                "mode": self.mode,
                "status": self.status,
                "verdict": self.verdict,
                "decided": self.done,
                "exit_code": judged.exit_code if judged else None,
                "window_start": iso(self.window_start),
                "window_end": iso(self.window_end),
                "deadline": iso(self.deadline),
                "samples_until": iso(self.cursor),
                "rollout_id": self.rollout_id,
                "step": self.step,
                "created_at": iso(self.created_at),
                "updated_at": iso(self.updated_at),
                "result": self.result,
            }
        )
        return view
