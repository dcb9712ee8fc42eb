"""The weekly report as data: pydantic models whose JSON is the report's JSON form.

Everything the HTML and Markdown show is here, already computed; the renderers only format.
Budgets come from their owner (`BudgetLine`) and are absent (None) when none are configured;
the cache section is absent when the cache is off and served nothing in the week.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    def of(
        cls,
        scope: Literal["day", "week"],
        tenant: str | None,
        day: date,
        spend: float,
        median: float,
        scale: float,
        z: float,
    ) -> "Anomaly":
        return cls(scope=scope, tenant=tenant, day=day, spend_usd=spend, median_usd=median, scale_usd=scale, z=z)


class BudgetLine(BaseModel):
    """One tenant (or key) budget over one of its periods that overlaps the week, with what the
    ledger billed in that period up to `counted_until` (input to the report, from the budgets'
    owner). `used` is US dollars for a spend budget, prompt + completion tokens for a token one."""

    tenant: str
    budget: str  # the budget's name, e.g. "month-spend" or "day-tokens-<key id>"
    key_id: str | None = None  # None: the whole tenant
    kind: Literal["spend", "tokens"] = "spend"
    period: Literal["day", "month"]
    period_start: datetime
    period_end: datetime  # when it resets
    counted_until: datetime  # `used` is billed in [period_start, counted_until)
    limit: float
    used: float
    soft_percent: float | None = None
    hard: bool = True

    @computed_field  # type: ignore[prop-decorator]
    @property
    def label(self) -> str:
        return f"{self.period_start:%Y-%m}" if self.period == "month" else f"{self.period_start:%Y-%m-%d}"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def remaining(self) -> float:
        """Negative when the budget was overrun (a soft budget, or requests in flight at the crossing)."""
        return self.limit - self.used

    @computed_field  # type: ignore[prop-decorator]
    @property
    def used_ratio(self) -> float | None:
        return ratio(self.used, self.limit)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def state(self) -> Literal["ok", "soft_limit", "exceeded"]:
        """As the gateway judges it: exceeded at 100%, soft_limit from `soft_percent`."""
        used = self.used_ratio or 0.0
        if used >= 1:
            return "exceeded"
        return "soft_limit" if self.soft_percent is not None and used * 100 >= self.soft_percent else "ok"

    @property
    def complete(self) -> bool:
        return self.counted_until >= self.period_end


class DailyBudgetWeek(BaseModel):
    """A daily budget over the week's days: how many it used up, and its fullest day."""

    tenant: str
    budget: str
    kind: Literal["spend", "tokens"]
    limit: float
    days: int
    days_soft: int  # days at or past the soft limit but not used up
    days_exceeded: int
    peak: BudgetLine


def daily_budget_weeks(lines: Sequence[BudgetLine]) -> list[DailyBudgetWeek]:
    """The day-period lines, one summary per daily budget."""
    groups: dict[tuple[str, str], list[BudgetLine]] = {}
    for b in lines:
        if b.period == "day":
            groups.setdefault((b.tenant, b.budget), []).append(b)
    return [
        DailyBudgetWeek(
            tenant=t,
            budget=name,
            kind=days[0].kind,
            limit=days[0].limit,
            days=len(days),
            days_soft=sum(d.state == "soft_limit" for d in days),
            days_exceeded=sum(d.state == "exceeded" for d in days),
            peak=max(days, key=lambda d: (d.used_ratio or 0.0, d.period_start)),
        )
        for (t, name), days in groups.items()
    ]


class CacheLine(BaseModel):
    """Response-cache use of one slice (all traffic, a tenant, an alias and version)."""

    name: str
    tenant: str | None = None
    alias: str | None = None
    model_version: str | None = None
    requests: int = 0
    lookups: int = 0  # requests the cache was asked about (deterministic, tenant opted in), hits included
    hits: int = 0
    hit_prompt_tokens: int = 0  # the cached answers' usage, as each hit records it
    hit_completion_tokens: int = 0
    hit_cost_usd: float = 0.0  # what the hits were charged (the gateway's cache.hit_cost_usd each)
    miss_cost_usd: float | None = None  # what the same tokens cost at the current prices; None: no prices given

    @computed_field  # type: ignore[prop-decorator]
    @property
    def hit_rate(self) -> float | None:
        """Share of the lookups answered from the cache."""
        return ratio(self.hits, self.lookups)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def saved_usd(self) -> float | None:
        return None if self.miss_cost_usd is None else self.miss_cost_usd - self.hit_cost_usd


class CacheSection(BaseModel):
    enabled: bool  # whether the gateway's cache is switched on (a week may have hits from before)
    totals: CacheLine
    by_tenant: list[CacheLine]  # slices with traffic, most hits first
    by_model: list[CacheLine]
    method: str  # how the hit rate and the saving are counted, for the reader
    prev_hit_rate: float | None = None  # the same hours of the week before; None: no lookups then


class CostSection(BaseModel):
    daily: list[DailySpend]
    top_spenders: list[str]  # tenants, highest spend first
    anomalies: list[Anomaly]
    anomaly_rule: str
    budgets: list[BudgetLine] | None  # None: no budgets configured

    @property
    def month_budgets(self) -> list[BudgetLine]:
        return [b for b in self.budgets or () if b.period == "month"]

    @property
    def daily_budgets(self) -> list[DailyBudgetWeek]:
        return daily_budget_weeks(self.budgets or ())


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


# Closed sets as the canary package and the ledger store them (reports may not import canary).
AnalysisMode = Literal["fixed", "live"]
AnalysisStatus = Literal["running", "done"]
CanaryVerdict = Literal["pass", "marginal", "fail", "inconclusive"]
RolloutState = Literal["running", "paused", "promoted", "rolled_back", "aborted"]


class AnalysisSummary(BaseModel):
    id: str
    alias: str
    baseline: str
    canary: str
    mode: AnalysisMode
    status: AnalysisStatus
    verdict: CanaryVerdict | None
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
    state: RolloutState
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
    cache: CacheSection | None  # None: the cache is off and served nothing this week
    safety: SafetySection
    reliability: ReliabilitySection
    change: ChangeSection

    @property
    def basename(self) -> str:
        return f"weekly-{self.week}"
