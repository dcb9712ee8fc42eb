"""The normalized SLO model: what both evaluators (Python and Prometheus) work from.

Specs in any supported format (native YAML, OpenSLO v1) are parsed into `SLO` objects; the
evaluator, the rule generator and the dashboards read only these, never the raw spec.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar, Literal, TypeVar

from slo import conventions
from slo.burn import BurnAlertWindow, WindowSpec, alert_windows, window_minutes

if TYPE_CHECKING:
    import numpy as np

# a count of requests or of USD: one number, or one per minute
_Amount = TypeVar("_Amount", float, "np.ndarray")


class SLIKind(StrEnum):
    AVAILABILITY = "availability"
    LATENCY = "latency"
    SAFETY = "safety_incidents"
    COST = "cost"
    EVENTS = "events"
    RAW = "raw"


class LatencyMetric(StrEnum):
    """Which latency a latency SLI measures; values are the spec spelling."""

    E2E = "e2e"
    TTFT = "ttft"
    TPOT = "tpot"

    @property
    def prom_metric(self) -> str:
        """The Prometheus histogram (without `_bucket`/`_count`)."""
        return _PROM_HISTOGRAMS[self]

    @property
    def ledger_metric(self) -> str:
        """The `metric` column of the ledger's bucket rollups."""
        return _LEDGER_METRICS[self]


_PROM_HISTOGRAMS = {
    LatencyMetric.E2E: "gen_ai_server_request_duration_seconds",
    LatencyMetric.TTFT: "gen_ai_server_time_to_first_token_seconds",
    LatencyMetric.TPOT: "gen_ai_server_time_per_output_token_seconds",
}
_LEDGER_METRICS = {LatencyMetric.E2E: "latency", LatencyMetric.TTFT: "ttft", LatencyMetric.TPOT: "tpot"}


@dataclass(frozen=True)
class AvailabilitySLI:
    """bad = 5xx responses; valid = every request except 4xx (the client's fault, 429 and 499
    client disconnects included). `bad_error_types`: 4xx responses with these `error_type`s count
    as errors (bad and valid), e.g. ("rate_limited", "budget_exceeded") for the gateway's 429s."""

    bad_error_types: tuple[str, ...] = ()
    kind: ClassVar[SLIKind] = SLIKind.AVAILABILITY

    def describe(self) -> str:
        if self.bad_error_types:
            return f"share of valid requests answered without a 5xx or a 4xx {'/'.join(self.bad_error_types)}"
        return "share of valid (non-4xx) requests answered without a 5xx"


@dataclass(frozen=True)
class LatencySLI:
    """good = successful requests whose latency is <= threshold_s (a histogram bucket bound)."""

    metric: LatencyMetric
    threshold_s: float
    kind: ClassVar[SLIKind] = SLIKind.LATENCY

    def describe(self) -> str:
        return f"share of successful requests with {self.metric.value} <= {self.threshold_s:g} s"


@dataclass(frozen=True)
class SafetySLI:
    """bad = requests with a blocked or flagged text in `direction`; total = all requests."""

    direction: Literal["input", "output"] = "output"
    kind: ClassVar[SLIKind] = SLIKind.SAFETY

    def describe(self) -> str:
        return f"share of requests without a safety incident in the {self.direction}"


@dataclass(frozen=True)
class CostSLI:
    """Spend against a budget per 1k requests.

    The error ratio is spend / allowed spend (allowed = requests x budget / 1000), with an error
    budget of 1: burn rate 1 spends exactly the budget, and the ratio may exceed 1.
    """

    budget_usd_per_1k_requests: float
    kind: ClassVar[SLIKind] = SLIKind.COST

    def allowed_spend(self, requests: _Amount) -> _Amount:
        """The spend the budget allows for `requests` requests, in USD."""
        return requests * self.budget_usd_per_1k_requests / 1000.0

    def describe(self) -> str:
        return f"spend per 1k requests against a budget of {self.budget_usd_per_1k_requests:g} USD"


WINDOW_PLACEHOLDER = re.compile(r"\{\{\s*\.window\s*\}\}")


def with_window(query: str, window: str) -> str:
    """A query with Sloth's `{{.window}}` replaced by a Prometheus duration."""
    return WINDOW_PLACEHOLDER.sub(window, query)


@dataclass(frozen=True)
class EventsSLI:
    """Sloth's events SLI on any metric: an error query and a total query.

    Sloth's form: whole PromQL queries with `{{.window}}` for the range (they aggregate
    themselves). Pyrra's form: plain counter selectors, summed here over the window and grouped
    by `group_by` (one SLI per group). Evaluated from Prometheus, not from the ledger.
    """

    error_query: str
    total_query: str
    group_by: tuple[str, ...] = ()
    kind: ClassVar[SLIKind] = SLIKind.EVENTS

    @property
    def templated(self) -> bool:
        return bool(WINDOW_PLACEHOLDER.search(self.error_query))

    def rate(self, query: str, window: str) -> str:
        if self.templated:
            return f"({with_window(query, window).strip()})"
        by = f" by ({', '.join(self.group_by)})" if self.group_by else ""
        return f"sum{by}(rate({query.strip()}[{window}]))"

    def error_ratio(self, window: str) -> str:
        """Errors over total in `window`; no sample without traffic (never NaN); missing
        errors count as none."""
        total = self.rate(self.total_query, window)
        return f"(\n  {self.rate(self.error_query, window)}\n  or\n  0 * {total}\n)\n/\n({total} > 0)"

    def describe(self) -> str:
        return "share of events the error query does not count, of those the total query counts"


@dataclass(frozen=True)
class RawSLI:
    """Sloth's raw SLI: one query giving the error ratio over `{{.window}}`. Prometheus only."""

    error_ratio_query: str
    kind: ClassVar[SLIKind] = SLIKind.RAW

    def error_ratio(self, window: str) -> str:
        return f"({with_window(self.error_ratio_query, window).strip()})"

    def describe(self) -> str:
        return "error ratio given by a PromQL query"


SLI = AvailabilitySLI | LatencySLI | SafetySLI | CostSLI | EventsSLI | RawSLI
PROMETHEUS_SLIS = (EventsSLI, RawSLI)  # SLIs on any metric: evaluated from Prometheus

SELECTOR_LABELS: tuple[str, ...] = ("model_alias", "model_version", "tenant", "operation")
# The labels every series of an own-kind SLI carries, in the rules and in the ledger's rollups
# alike: `operation` is on inferwatch_requests_total and the request rollups only (the latency
# buckets of the ledger, the cost and the safety-incident counters have none).
SCOPE_LABELS: tuple[str, ...] = ("model_alias", "model_version", "tenant")


def traffic_labels(sli: SLI) -> tuple[str, ...]:
    """The labels an own-kind SLI can select and group its traffic by."""
    return SELECTOR_LABELS if isinstance(sli, AvailabilitySLI) else SCOPE_LABELS


@dataclass(frozen=True)
class Selector:
    """Which traffic an own-kind SLO covers and how it is split: an empty tuple means any value;
    `exclude` holds (label, values) the traffic must not have; `group_by` splits the SLO into one
    SLI per value of those labels (Pyrra's grouping), in the rules and in the ledger alike."""

    model_alias: tuple[str, ...] = ()
    model_version: tuple[str, ...] = ()
    tenant: tuple[str, ...] = ()
    operation: tuple[str, ...] = ()
    exclude: tuple[tuple[str, tuple[str, ...]], ...] = ()
    group_by: tuple[str, ...] = ()

    def items(self) -> list[tuple[str, tuple[str, ...]]]:
        """(label, allowed values) for each constrained label, in SELECTOR_LABELS order."""
        return [(k, getattr(self, k)) for k in SELECTOR_LABELS if getattr(self, k)]

    def labels(self) -> set[str]:
        """Every label the selector matches on or groups by."""
        return {k for k, _ in self.items()} | {k for k, _ in self.exclude} | set(self.group_by)

    def single_values(self) -> dict[str, str]:
        """Labels pinned to exactly one value (they become labels of the rules)."""
        return {k: v[0] for k, v in self.items() if len(v) == 1}

    def matches(self, labels: dict[str, str]) -> bool:
        return all(labels.get(k) in v for k, v in self.items()) and all(
            labels.get(k, "") not in v for k, v in self.exclude
        )

    @classmethod
    def of(
        cls,
        values: Mapping[str, tuple[str, ...]],
        exclude: tuple[tuple[str, tuple[str, ...]], ...] = (),
        group_by: tuple[str, ...] = (),
    ) -> Selector:
        """From allowed values by label (labels absent or empty: any value)."""
        v = {k: tuple(values.get(k, ())) for k in SELECTOR_LABELS}
        return cls(v["model_alias"], v["model_version"], v["tenant"], v["operation"], exclude, group_by)

    def pinned(self, group: Mapping[str, str]) -> Selector:
        """The selector of one group: each grouping label pinned to the group's value."""
        return Selector.of({**dict(self.items()), **{k: (v,) for k, v in group.items()}}, self.exclude)


def counted_error_types(slos: Iterable[SLO]) -> tuple[str, ...]:
    """Every 4xx error type an availability SLO counts as an error: the gateway starts their
    series at 0, or Prometheus would miss the first one of each scope."""
    types = (t for s in slos if isinstance(s.sli, AvailabilitySLI) for t in s.sli.bad_error_types)
    return tuple(sorted(set(types)))


@dataclass(frozen=True)
class TimeWindow:
    """The SLO period: rolling `days`, or the calendar month (then `days` is the nominal 30
    used for burn-rate factors and for the Prometheus rules, which cannot follow a calendar)."""

    days: int
    calendar: bool = False

    @property
    def hours(self) -> int:
        return self.days * 24

    @property
    def minutes(self) -> int:
        return self.days * 1440

    def describe(self) -> str:
        return "calendar month" if self.calendar else f"rolling {self.days}d"


AlertKey = Literal["page", "ticket", "absent", "no_traffic"]
Labels = tuple[tuple[str, str], ...]  # sorted (name, value) pairs


@dataclass(frozen=True)
class AlertShape:
    """Name, labels and annotations of one burn-rate alert, as Sloth's `page_alert` /
    `ticket_alert`; a `severity` in `labels` replaces the severity value ("page" / "ticket")."""

    name: str | None = None
    labels: Labels = ()
    annotations: Labels = ()


@dataclass(frozen=True)
class AlertIdentity:
    """What an alert of an SLO is called and carries beyond the SLO's own labels."""

    name: str
    severity: str  # the `severity` label's value
    labels: dict[str, str]
    annotations: dict[str, str]


_DEFAULT_NAMES: dict[AlertKey, str] = {
    "page": conventions.PAGE_ALERT,
    "ticket": conventions.TICKET_ALERT,
    "absent": conventions.ABSENT_ALERT,
    "no_traffic": conventions.NO_TRAFFIC_ALERT,
}


@dataclass(frozen=True)
class Alerting:
    page: bool = True
    ticket: bool = True
    # SLOMetricAbsent: the SLI's series has been missing this long (the rule's `for:`)
    no_data_after_minutes: int = 15
    # SLONoTraffic, opt-in: the series exist but counted no event this long; None = never alert
    no_traffic_after_minutes: int | None = None
    windows: tuple[WindowSpec, ...] = ()  # an explicit window set (Sloth's AlertWindows); () = default
    # Routing (Sloth's alerting block): one name for both burn-rate alerts, labels and
    # annotations on every alert of the SLO, and per-severity shapes on top.
    name: str | None = None
    labels: Labels = ()
    annotations: Labels = ()
    page_alert: AlertShape = AlertShape()
    ticket_alert: AlertShape = AlertShape()

    def alert(self, key: AlertKey) -> AlertIdentity:
        """The name, severity value, extra labels and annotations of one alert. The absent and
        no-traffic alerts are tickets: they take the ticket alert's labels and severity value."""
        shape = self.page_alert if key == "page" else self.ticket_alert
        labels = {**dict(self.labels), **dict(shape.labels)}
        default = conventions.PAGE_SEVERITY if key == "page" else conventions.TICKET_SEVERITY
        severity = labels.pop(conventions.SEVERITY_LABEL, default)
        name = _DEFAULT_NAMES[key]
        if key in ("page", "ticket"):
            name = shape.name or self.name or name
        annotations = {**dict(self.annotations), **(dict(shape.annotations) if key in ("page", "ticket") else {})}
        return AlertIdentity(name, severity, labels, annotations)


@dataclass(frozen=True)
class Source:
    file: str
    line: int
    format: str  # "inferwatch/v1" | "openslo/v1"


@dataclass(frozen=True)
class SLO:
    service: str
    name: str
    sli: SLI
    objective: float  # ratio of good events, 0 <= objective < 1 (0 for cost SLOs)
    window: TimeWindow
    selector: Selector = Selector()
    alerting: Alerting = Alerting()
    description: str = ""
    labels: tuple[tuple[str, str], ...] = ()  # extra rule labels, sorted
    source: Source | None = field(default=None, compare=False)

    @property
    def id(self) -> str:
        """Sloth's `sloth_id`."""
        return conventions.slo_id(self.service, self.name)

    @property
    def kind(self) -> SLIKind:
        return self.sli.kind

    @property
    def error_budget(self) -> float:
        """Allowed error ratio, 1 - objective, without float noise (0.999 -> 0.001)."""
        return float(Decimal(1) - Decimal(repr(self.objective)))

    @property
    def bounded(self) -> bool:
        """Whether the error ratio cannot exceed 1 (false for cost)."""
        return self.kind is not SLIKind.COST

    @property
    def objective_percent(self) -> float:
        return float(Decimal(repr(self.objective)) * 100)

    @property
    def labels_dict(self) -> dict[str, str]:
        return dict(self.labels)

    def alert_table(self) -> tuple[BurnAlertWindow, ...]:
        """The burn-rate rows of this SLO (its window set, factors, caps)."""
        return alert_windows(
            self.window.days, self.error_budget, bounded=self.bounded, window_set=self.alerting.windows or None
        )

    @property
    def group_by(self) -> tuple[str, ...]:
        """The labels the SLO is split by (an events SLI's own, or its selector's)."""
        return self.sli.group_by if isinstance(self.sli, EventsSLI) else self.selector.group_by

    def for_group(self, group: dict[str, str]) -> SLO:
        """The SLO of one group of a grouped own-kind SLO: same id, its traffic only."""
        return replace(self, selector=self.selector.pinned(group))

    def sli_windows(self) -> dict[str, int]:
        """Every SLI window (name -> minutes) the rules record and the evaluator computes."""
        return window_minutes(self.alert_table())
