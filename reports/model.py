"""The weekly report as data: pydantic models whose JSON is the report's JSON form.

Everything the HTML and Markdown show is here, already computed; the renderers only format.
Budgets and response-cache statistics come from outside the ledger (`BudgetLine`,
`CacheStats`) and are absent (None) when the caller has none.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, computed_field


def change(current: float, previous: float) -> float | None:
    """Relative change (0.25 = +25%); None without a previous value to compare with."""
    return (current - previous) / previous if previous else None


def ratio(num: float, den: float, scale: float = 1.0) -> float | None:
    return num * scale / den if den else None


class Line(BaseModel):
    """Traffic and spend of one slice (all traffic, a tenant, an alias, an alias and version)
    this week, with last week's requests and spend over the same span."""

    name: str
    tenant: str | None = None
    alias: str | None = None
    model_version: str | None = None
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cache_hits: int = 0
    prev_requests: int = 0
    prev_cost_usd: float = 0.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cost_change(self) -> float | None:
        return change(self.cost_usd, self.prev_cost_usd)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def requests_change(self) -> float | None:
        return change(self.requests, self.prev_requests)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cost_per_1k_requests_usd(self) -> float | None:
        return ratio(self.cost_usd, self.requests, 1e3)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cost_per_1m_tokens_usd(self) -> float | None:
        return ratio(self.cost_usd, self.total_tokens, 1e6)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def avg_prompt_tokens(self) -> float | None:
        return ratio(self.prompt_tokens, self.requests)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def avg_completion_tokens(self) -> float | None:
        return ratio(self.completion_tokens, self.requests)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def avg_tokens_per_request(self) -> float | None:
        return ratio(self.total_tokens, self.requests)


class DailySpend(BaseModel):
    day: date
    cost_usd: float
    by_tenant: dict[str, float]


class Anomaly(BaseModel):
    scope: Literal["day", "week"]  # a day's spend vs daily history, or a tenant's week vs weekly history
    tenant: str | None  # None: all tenants together
    day: date  # the day, or the week's Monday
    spend_usd: float
    median_usd: float
    scale_usd: float
    z: float

    @computed_field  # type: ignore[prop-decorator]
    @property
    def direction(self) -> Literal["spike", "drop"]:
        return "spike" if self.z > 0 else "drop"

    @classmethod
    def of(cls, scope: Literal["day", "week"], tenant: str | None, day: date, spend: float,
           median: float, scale: float, z: float) -> "Anomaly":
        return cls(scope=scope, tenant=tenant, day=day, spend_usd=spend, median_usd=median, scale_usd=scale, z=z)


class BudgetLine(BaseModel):
    """A spend budget as its owner reports it (input to the report)."""

    tenant: str
    period: str  # e.g. "month", "2026-11"
    limit_usd: float
    spent_usd: float

    @computed_field  # type: ignore[prop-decorator]
    @property
    def remaining_usd(self) -> float:
        return self.limit_usd - self.spent_usd

    @computed_field  # type: ignore[prop-decorator]
    @property
    def used(self) -> float | None:
        return ratio(self.spent_usd, self.limit_usd)


class CacheStats(BaseModel):
    """Response-cache counters for the week (input to the report)."""

    lookups: int
    hits: int
    saved_usd: float | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def hit_rate(self) -> float | None:
        return ratio(self.hits, self.lookups)


class CostSection(BaseModel):
    daily: list[DailySpend]
    top_spenders: list[str]  # tenants, highest spend first
    anomalies: list[Anomaly]
    anomaly_rule: str
    budgets: list[BudgetLine] | None  # None: no budgets configured


class HitCount(BaseModel):
    category: str
    direction: str
    action: str
    hits: int


class CategoryHits(BaseModel):
    category: str
    block: int = 0
    redact: int = 0
    flag: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total(self) -> int:
        return self.block + self.redact + self.flag


class ReviewOutcome(BaseModel):
    """Review items of the week's requests in one category (precision = TP / resolved)."""

    category: str
    queued: int = 0
    open: int = 0
    claimed: int = 0
    resolved: int = 0
    true_positive: int = 0
    false_positive: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def precision(self) -> float | None:
        return ratio(self.true_positive, self.true_positive + self.false_positive)


class Incident(BaseModel):
    request_id: str
    started_at: datetime
    tenant: str
    alias: str
    category: str
    direction: str
    action: str
    scanner: str
    score: float
    excerpt: str | None  # redacted by the safety layer before it was stored


class SafetySection(BaseModel):
    hits_total: int
    hits: list[HitCount]
    by_category: list[CategoryHits]
    requests_with_hits: int
    # Each request counted once, by its strongest action: blocked > redacted > flagged.
    requests_blocked: int
    requests_redacted: int
    requests_flagged: int
    review: list[ReviewOutcome]
    worst: list[Incident]


class AlertEpisode(BaseModel):
    started_at: datetime
    ended_at: datetime | None  # None: still firing at the end of the week


class SLOWeek(BaseModel):
    id: str
    name: str
    service: str
    kind: str
    description: str
    objective: float | None  # None for cost SLOs
    budget_usd_per_1k_requests: float | None = None  # cost SLOs
    status: Literal["met", "missed", "no_data", "unsupported"]
    reason: str | None = None
    good: float = 0.0
    total: float = 0.0
    compliance: float | None = None  # good / total over the week (None for cost SLOs)
    burn_rate: float | None = None  # the week's error ratio over the error budget
    budget_consumed: float | None = None  # share of the SLO period's error budget the week used
    pages: list[AlertEpisode] = []
    tickets: int = 0


class ReliabilitySection(BaseModel):
    slos: list[SLOWeek]
    history_recorded: bool  # whether the SLO job recorded evaluations in the week (pages come from them)


class AnalysisSummary(BaseModel):
    id: str
    alias: str
    baseline: str
    canary: str
    mode: str
    status: str
    verdict: str | None
    reason: str | None
    created_at: datetime
    rollout_id: str | None
    step: int | None


class RolloutEventSummary(BaseModel):
    at: datetime
    kind: str


class RolloutSummary(BaseModel):
    id: str
    alias: str
    baseline: str
    canary: str
    state: str
    steps: list[float]
    current_step: int
    created_at: datetime
    events: list[RolloutEventSummary]  # the week's events


class ChangeSection(BaseModel):
    analyses: list[AnalysisSummary]
    rollouts: list[RolloutSummary]


class WeeklyReport(BaseModel):
    week: str  # ISO week, e.g. 2026-W47
    start: datetime
    end: datetime
    data_until: datetime  # end of the data read: `end`, or the last full hour of a week in progress
    partial: bool
    previous_week: str
    generated_at: datetime
    totals: Line
    by_tenant: list[Line]  # every known tenant, those without traffic included
    by_alias: list[Line]
    by_model: list[Line]  # alias and version
    tenants_without_traffic: list[str]
    cost: CostSection
    cache: CacheStats | None
    safety: SafetySection
    reliability: ReliabilitySection
    change: ChangeSection

    @property
    def basename(self) -> str:
        return f"weekly-{self.week}"
