"""The OpenSLO v1 subset: `kind: SLO` documents (and `kind: SLI` they reference).

Supported::

    apiVersion: openslo/v1
    kind: SLO
    metadata:
      name: ttft                      # the SLO name (one objective) or its prefix (several)
      labels: {team: platform}        # string values; become rule labels
      annotations:                    # optional inferwatch alerting options
        inferwatch.io/page: "true"
        inferwatch.io/ticket: "true"
        inferwatch.io/no-data-after: 15m     # SLOMetricAbsent's `for:`
        inferwatch.io/no-traffic-after: 1h   # opt-in SLONoTraffic
        inferwatch.io/page-severity: critical  # routing: see slo.openslo_routing
    spec:
      service: inferwatch
      description: ...
      budgetingMethod: Occurrences    # the only method supported
      timeWindow:
        - duration: 28d               # rolling: 7d..90d (or weeks)
          isRolling: true
        # - duration: 1M              # calendar month (UTC)
        #   isRolling: false
        #   calendar: {startTime: "2024-01-01 00:00:00", timeZone: UTC}
      indicator:                      # inline, or indicatorRef: <name of a kind: SLI document>
        metadata: {name: ttft}
        spec:
          ratioMetric:                # counter: true; good or bad, and total
            counter: true
            good:
              metricSource:
                type: Prometheus
                spec: {query: 'gen_ai_server_time_to_first_token_seconds_bucket{le="2"}'}
            total: {metricSource: {type: Prometheus, spec: {query: gen_ai_server_time_to_first_token_seconds_count}}}
          # thresholdMetric:          # instead of ratioMetric
          #   metricSource: {type: Prometheus, spec: {query: gen_ai_server_time_to_first_token_seconds}}
      objectives:
        - target: 0.95                # or targetPercent: 95
          # op: lte, value: 2         # thresholdMetric only: the latency threshold in seconds

Queries are plain selectors of catalog metrics, recognized as inferwatch SLIs:
availability (bad `inferwatch_requests_total{status_class="5xx"}` or good `{status_class="2xx"}`
over total `{status_class!="4xx"}`), latency (good `<histogram>_bucket{le="T"}` over total
`<histogram>_count`, or a thresholdMetric on the histogram with `op: lte`), and safety (bad
`inferwatch_safety_incidents_total{direction="output"}` over total `inferwatch_requests_total`).
Matchers on model_alias, model_version and tenant (`=` or `=~"a|b"`) become the selector and
must be the same in both queries. Cost SLOs exist only in the native form. alertPolicies and
the `inferwatch.io/` routing annotations shape the alerts (`slo.openslo_routing`); inferwatch
always renders its own burn-rate table.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from slo import openslo_routing as routing
from slo.metrics_catalog import REQUESTS_TOTAL, SAFETY_INCIDENTS_TOTAL
from slo.model import (
    SLO,
    SELECTOR_LABELS,
    WINDOW_PLACEHOLDER,
    Alerting,
    AvailabilitySLI,
    EventsSLI,
    LatencyMetric,
    LatencySLI,
    SafetySLI,
    Selector,
    Source,
)
from slo.specfields import (
    FieldError,
    SpecError,
    check_labels,
    check_name,
    from_validation_error,
    objective_from_percent,
    objective_from_ratio,
    parse_minutes,
    parse_threshold,
    parse_window,
)
from slo.yamlloc import LocDict, LocList, line_at

OPENSLO_VERSION = "openslo/v1"
V1ALPHA = "openslo/v1alpha"
VERSIONS = (OPENSLO_VERSION, V1ALPHA)
IGNORED_KINDS = {"Service", "DataSource", "AlertPolicy", "AlertCondition", "AlertNotificationTarget"}
ANNOTATION_PREFIX = "inferwatch.io/"


class _OS(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _MetricSource(_OS):
    type: str | None = None  # taken from the DataSource named by metricSourceRef when absent
    metricSourceRef: str | None = None
    spec: dict[str, Any]


class _MetricRef(_OS):
    metricSource: _MetricSource


class _Ratio(_OS):
    counter: bool = True
    good: _MetricRef | None = None
    bad: _MetricRef | None = None
    total: _MetricRef

    @model_validator(mode="after")
    def _one_numerator(self) -> "_Ratio":
        if (self.good is None) == (self.bad is None):
            raise ValueError("ratioMetric needs exactly one of good and bad, plus total")
        if not self.counter:
            raise ValueError("only counter ratio metrics (counter: true) are supported")
        return self


class _SLISpec(_OS):
    description: str = ""
    ratioMetric: _Ratio | None = None
    thresholdMetric: _MetricRef | None = None

    @model_validator(mode="after")
    def _one_metric(self) -> "_SLISpec":
        if (self.ratioMetric is None) == (self.thresholdMetric is None):
            raise ValueError("an indicator needs exactly one of ratioMetric and thresholdMetric")
        return self


class _Metadata(_OS):
    name: str
    displayName: str | None = None
    labels: dict[str, Any] | None = None
    annotations: dict[str, Any] | None = None


class _InlineSLI(_OS):
    metadata: _Metadata | None = None
    spec: _SLISpec


class _SLIDoc(_OS):
    apiVersion: Literal["openslo/v1"]
    kind: Literal["SLI"]
    metadata: _Metadata
    spec: _SLISpec


class _TimeWindow(_OS):
    duration: str
    isRolling: bool = True
    calendar: dict[str, Any] | None = None


class _Objective(_OS):
    name: str | None = None
    displayName: str | None = None
    op: Literal["lte", "lt", "gte", "gt"] | None = None
    value: float | None = None
    target: float | None = None
    targetPercent: float | None = None

    @model_validator(mode="after")
    def _one_target(self) -> "_Objective":
        if (self.target is None) == (self.targetPercent is None):
            raise ValueError("an objective needs exactly one of target and targetPercent")
        return self


class _SLOSpec(_OS):
    description: str = ""
    service: str
    indicator: _InlineSLI | None = None
    indicatorRef: str | None = None
    timeWindow: list[_TimeWindow] = Field(min_length=1, max_length=1)
    budgetingMethod: str
    objectives: list[_Objective] = Field(min_length=1)
    alertPolicies: list[Any] | None = None

    @model_validator(mode="after")
    def _one_indicator(self) -> "_SLOSpec":
        if (self.indicator is None) == (self.indicatorRef is None):
            raise ValueError("spec needs exactly one of indicator and indicatorRef")
        return self


class _SLODoc(_OS):
    apiVersion: Literal["openslo/v1", "openslo/v1alpha"]
    kind: Literal["SLO"]
    metadata: _Metadata
    spec: _SLOSpec


# -- PromQL selectors ---------------------------------------------------------------------------

_SELECTOR = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(.*)\})?\s*$", re.S)
_MATCHER = re.compile(
    r"""\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')\s*(?:,|$)"""
)

Matchers = dict[str, tuple[str, str]]  # label -> (op, value)


def parse_selector(query: str) -> tuple[str, Matchers]:
    """`name{label op "value", ...}` -> (name, {label: (op, value)})."""
    m = _SELECTOR.match(query)
    if not m:
        raise FieldError(
            f"query {query.strip()!r} must be a plain selector such as "
            'metric_name{label="value"}; functions and operators are not supported'
        )
    name, body = m.group(1), (m.group(2) or "").strip()
    matchers: Matchers = {}
    pos = 0
    while pos < len(body):
        mm = _MATCHER.match(body, pos)
        if not mm:
            raise FieldError(f"cannot parse label matchers in {query.strip()!r}")
        label, op, raw = mm.group(1), mm.group(2), mm.group(3)
        if label in matchers:
            raise FieldError(f"label {label!r} is matched twice in {query.strip()!r}")
        matchers[label] = (op, re.sub(r"\\(.)", r"\1", raw[1:-1]))
        pos = mm.end()
    return name, matchers


def _selector_of(matchers: Matchers, allowed: set[str], query: str) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for label, (op, value) in matchers.items():
        if label in allowed:
            continue
        if label not in SELECTOR_LABELS:
            raise FieldError(
                f"label {label!r} is not supported in {query!r}; only {', '.join(SELECTOR_LABELS)} select traffic"
            )
        if op == "=":
            out[label] = (value,)
        elif op == "=~" and re.fullmatch(r"[A-Za-z0-9_.@:/-]+(\|[A-Za-z0-9_.@:/-]+)*", value):
            out[label] = tuple(sorted(set(value.split("|"))))
        else:
            raise FieldError(f'{label} must be matched with = or =~"a|b" (plain values) in {query!r}')
    return out


def _expect(matchers: Matchers, label: str, op: str, value: str | None, query: str, hint: str) -> str:
    got = matchers.get(label)
    if got is None or got[0] != op or (value is not None and got[1] != value):
        raise FieldError(f"{query!r}: {hint}")
    return got[1]


Sources = dict[str, str]  # DataSource documents of the file by name -> their type, for metricSourceRef


def _prom_query(ref: _MetricRef, where: str, sources: Sources) -> str:
    src = ref.metricSource
    kind = src.type
    if src.metricSourceRef is not None:
        if src.metricSourceRef not in sources:
            raise FieldError(
                f"metricSourceRef {src.metricSourceRef!r}: no kind: DataSource with that name in the file",
                (where, "metricSource", "metricSourceRef"),
            )
        kind = kind or sources[src.metricSourceRef]
    if kind is None or kind.lower() != "prometheus":
        raise FieldError(
            f"metricSource type {kind!r} is not supported; use Prometheus", (where, "metricSource", "type")
        )
    q = src.spec.get("query")
    if not isinstance(q, str) or not q.strip():
        raise FieldError("metricSource.spec.query must be a PromQL selector", (where, "metricSource", "spec"))
    return q.strip()


def _at(where: str, fn: Any, *args: Any) -> Any:
    """Run a parser, pointing any FieldError at the query of `where` (good, bad, total)."""
    try:
        return fn(*args)
    except FieldError as e:
        raise FieldError(str(e), e.path or (where, "metricSource", "spec", "query")) from None


_HISTOGRAMS = {m.prom_metric: m for m in LatencyMetric}


_CATALOG = {
    REQUESTS_TOTAL.name,
    SAFETY_INCIDENTS_TOTAL.name,
    *(f"{h}{x}" for h in _HISTOGRAMS for x in ("_bucket", "_count")),
}


def _events(numerator: str, total: str, good: bool) -> EventsSLI:
    """An events SLI from whole queries (with `{{.window}}`) or counter selectors; a good-events
    numerator becomes errors = total - good."""
    if WINDOW_PLACEHOLDER.search(numerator) or WINDOW_PLACEHOLDER.search(total):
        if not (WINDOW_PLACEHOLDER.search(numerator) and WINDOW_PLACEHOLDER.search(total)):
            raise FieldError("both queries must use {{.window}}, or neither (counter selectors)")
        return EventsSLI(f"({total}) - ({numerator})" if good else numerator, total)
    if good:
        return EventsSLI(
            f"sum(rate({total}[{{{{.window}}}}])) - sum(rate({numerator}[{{{{.window}}}}]))",
            f"sum(rate({total}[{{{{.window}}}}]))",
        )
    return EventsSLI(numerator, total)


def classify_ratio(ratio: _Ratio, sources: Sources) -> tuple[Any, Selector]:
    """Recognize an inferwatch SLI in a good/bad over total ratio of catalog selectors."""
    num_ref = ratio.good or ratio.bad
    assert num_ref is not None
    good = ratio.good is not None
    nw = "good" if good else "bad"
    nq, tq = _prom_query(num_ref, nw, sources), _prom_query(ratio.total, "total", sources)
    if WINDOW_PLACEHOLDER.search(nq) or WINDOW_PLACEHOLDER.search(tq):
        return _events(nq, tq, good), Selector()
    (n_name, n_m), (t_name, t_m) = _at(nw, parse_selector, nq), _at("total", parse_selector, tq)
    if not {n_name, t_name} & _CATALOG:
        return _events(nq, tq, good), Selector()  # a ratio on any metric

    if n_name == REQUESTS_TOTAL.name and t_name == REQUESTS_TOTAL.name:
        want = "2xx" if good else "5xx"
        _at(nw, _expect, n_m, "status_class", "=", want, nq, f'availability {nw} events are status_class="{want}"')
        _at(
            "total",
            _expect,
            t_m,
            "status_class",
            "!=",
            "4xx",
            tq,
            'availability total is every request but 4xx: status_class!="4xx"',
        )
        sli: Any = AvailabilitySLI()
        n_sel = _at(nw, _selector_of, n_m, {"status_class"}, nq)
        t_sel = _at("total", _selector_of, t_m, {"status_class"}, tq)
    elif n_name == SAFETY_INCIDENTS_TOTAL.name and t_name == REQUESTS_TOTAL.name and not good:
        direction = _at(nw, _expect, n_m, "direction", "=", None, nq, 'incidents need direction="input" or "output"')
        if direction not in ("input", "output"):
            raise FieldError(f'{nq!r}: direction must be "input" or "output"', (nw, "metricSource", "spec", "query"))
        if "status_class" in t_m:
            raise FieldError(
                f"{tq!r}: the safety SLI's total is every request (no status_class)",
                ("total", "metricSource", "spec", "query"),
            )
        sli = SafetySLI(direction)
        n_sel, t_sel = _at(nw, _selector_of, n_m, {"direction"}, nq), _at("total", _selector_of, t_m, set(), tq)
    elif (
        good
        and n_name.endswith("_bucket")
        and t_name.endswith("_count")
        and n_name.removesuffix("_bucket") == t_name.removesuffix("_count")
        and n_name.removesuffix("_bucket") in _HISTOGRAMS
    ):
        le = _at(nw, _expect, n_m, "le", "=", None, nq, 'latency good events need a bucket matcher le="<seconds>"')
        try:
            threshold = parse_threshold(float(le))
        except ValueError:
            raise FieldError(
                f"{nq!r}: le={le!r} is not a latency threshold in seconds", (nw, "metricSource", "spec", "query")
            ) from None
        sli = LatencySLI(_HISTOGRAMS[n_name.removesuffix("_bucket")], threshold)
        n_sel, t_sel = _at(nw, _selector_of, n_m, {"le"}, nq), _at("total", _selector_of, t_m, set(), tq)
    else:
        raise FieldError(
            f"unsupported ratio {'good' if good else 'bad'}={nq!r} total={tq!r}; supported: "
            "availability (inferwatch_requests_total), latency (<histogram>_bucket over <histogram>_count), "
            "safety (inferwatch_safety_incidents_total over inferwatch_requests_total)"
        )
    if n_sel != t_sel:
        raise FieldError(
            f"{'good' if good else 'bad'} and total must select the same traffic "
            f"(model_alias, model_version, tenant): {nq!r} vs {tq!r}"
        )
    return sli, Selector.of(n_sel)


def classify_threshold(ref: _MetricRef, objective: _Objective, sources: Sources) -> tuple[Any, Selector]:
    """A thresholdMetric on a latency histogram with `op: lte` is a latency SLI."""
    q = _prom_query(ref, ".", sources)
    query_path = ("metricSource", "spec", "query")
    try:
        name, m = parse_selector(q)
        base = name.removesuffix("_bucket")
        if base not in _HISTOGRAMS:
            raise FieldError(f"thresholdMetric {q!r} must be a latency histogram: {', '.join(_HISTOGRAMS)}")
        selector = Selector.of(_selector_of(m, set(), q))
    except FieldError as e:
        raise FieldError(str(e), query_path) from None
    if objective.op != "lte" or objective.value is None:
        raise FieldError(
            "a latency thresholdMetric objective needs op: lte and value: <seconds> "
            "(histogram buckets count values <= their bound)",
            ("objective",),
        )
    try:
        threshold = parse_threshold(objective.value)
    except FieldError as e:
        raise FieldError(str(e), ("objective",)) from None
    return LatencySLI(_HISTOGRAMS[base], threshold), selector


# -- documents ----------------------------------------------------------------------------------


# SLIs by name, DataSource types by name, AlertPolicy documents by name
Refs = tuple[dict[str, tuple["_SLIDoc", LocDict]], Sources, dict[str, LocDict]]


def collect_refs(docs: Sequence[Any], file: str) -> Refs:
    """`kind: SLI` documents by name (for indicatorRef) and `kind: DataSource` types by name
    (for metricSourceRef)."""
    slis: dict[str, tuple[_SLIDoc, LocDict]] = {}
    sources: Sources = {}
    policies: dict[str, LocDict] = {}
    for doc in docs:
        if isinstance(doc, LocDict) and doc.get("kind") == "AlertPolicy":
            name = (doc.get("metadata") or {}).get("name")
            if isinstance(name, str):
                policies[name] = doc
        if isinstance(doc, LocDict) and doc.get("kind") == "SLI" and doc.get("apiVersion") == OPENSLO_VERSION:
            try:
                sli = _SLIDoc.model_validate(doc)
            except ValidationError as e:
                raise from_validation_error(e, file, doc) from None
            slis[sli.metadata.name] = (sli, doc)
        if isinstance(doc, LocDict) and doc.get("kind") == "DataSource":
            name = (doc.get("metadata") or {}).get("name")
            kind = (doc.get("spec") or {}).get("type")
            if isinstance(name, str) and isinstance(kind, str):
                sources[name] = kind
    return slis, sources, policies


def _loc(node: Any, line: int) -> Any:
    """Plain data as LocDict/LocList whose every line is `line` (for converted documents)."""
    if isinstance(node, dict):
        out = LocDict({k: _loc(v, line) for k, v in node.items()})
        out.line, out.key_lines = line, {k: getattr(node, "key_lines", {}).get(k, line) for k in node}
        return out
    if isinstance(node, list):
        seq = LocList(_loc(v, line) for v in node)
        seq.line, seq.item_lines = line, [line] * len(node)
        return seq
    return node


_UNITS = {"day": "d", "week": "w"}


def from_v1alpha(doc: LocDict, file: str) -> LocDict:
    """An OpenSLO v1alpha SLO (as Sloth writes it: `ratioMetrics` per objective with `good`
    and `total` queries, `timeWindows` with count and unit) as a v1 document."""
    spec = doc.get("spec") or {}
    objectives = spec.get("objectives") or []
    ratios = [o.get("ratioMetrics") for o in objectives if isinstance(o, dict)]
    r = ratios[0] if ratios else None
    if r is None or any(x is None or x != r for x in ratios):
        raise SpecError.at(
            file,
            line_at(doc, ["spec", "objectives"]),
            "v1alpha objectives need ratioMetrics, the same in each (thresholdMetric is not read)",
        )
    windows = []
    for tw in spec.get("timeWindows") or []:
        unit = _UNITS.get(str(tw.get("unit", "")).lower())
        if unit is None:
            raise SpecError.at(
                file, line_at(doc, ["spec", "timeWindows"]), f"timeWindows unit {tw.get('unit')!r} must be Day or Week"
            )
        windows.append({"duration": f"{tw.get('count')}{unit}", "isRolling": bool(tw.get("isRolling", True))})

    def source(m: Any) -> dict[str, Any]:
        return {"metricSource": {"type": m.get("source", "prometheus"), "spec": {"query": m.get("query", "")}}}

    which = "good" if "good" in r else "bad"
    v1 = {
        "apiVersion": OPENSLO_VERSION,
        "kind": "SLO",
        "metadata": doc.get("metadata") or {},
        "spec": {
            "service": spec.get("service"),
            "description": spec.get("description", ""),
            "budgetingMethod": spec.get("budgetingMethod", "Occurrences"),
            "timeWindow": windows,
            "indicator": {
                "spec": {
                    "ratioMetric": {
                        "counter": True,
                        which: source(r.get(which) or {}),
                        "total": source(r.get("total") or {}),
                    }
                }
            },
            "objectives": [{k: v for k, v in o.items() if k in ("target", "displayName", "name")} for o in objectives],
        },
    }
    out = _loc(v1, doc.line)
    assert isinstance(out, LocDict)
    return out


def _window(tw: _TimeWindow) -> Any:
    if tw.isRolling:
        return parse_window(tw.duration)
    tz = (tw.calendar or {}).get("timeZone", "UTC")
    if tw.duration.strip() != "1M" or tz not in ("UTC", "Etc/UTC"):
        raise FieldError("calendar windows must be duration: 1M with timeZone UTC")
    return parse_window("calendar-month")


def _alerting(annotations: dict[str, Any] | None) -> Alerting:
    a = {
        k.removeprefix(ANNOTATION_PREFIX): v for k, v in (annotations or {}).items() if k.startswith(ANNOTATION_PREFIX)
    }
    unknown = set(a) - {"page", "ticket", "no-data-after", "no-traffic-after", *routing.SLO_ANNOTATIONS}
    if unknown:
        raise FieldError(f"unknown annotations {sorted(ANNOTATION_PREFIX + k for k in unknown)}")
    out: dict[str, Any] = {}
    for key in ("page", "ticket"):
        if key in a:
            v = str(a[key]).strip().lower()
            if v not in ("true", "false"):
                raise FieldError(f'{ANNOTATION_PREFIX}{key} must be "true" or "false"')
            out[key] = v == "true"
    if "no-data-after" in a:
        out["no_data_after_minutes"] = parse_minutes(a["no-data-after"], "no-data-after")
    if "no-traffic-after" in a:
        out["no_traffic_after_minutes"] = parse_minutes(a["no-traffic-after"], "no-traffic-after")
    return routing.from_annotations(Alerting(**out), a)


def parse_document(doc: LocDict, file: str, refs: Refs) -> list[SLO]:
    """The SLOs of one OpenSLO document ([] for SLI and other known non-SLO kinds)."""
    kind = doc.get("kind")
    if doc.get("apiVersion") not in VERSIONS:
        raise SpecError.at(
            file, line_at(doc, ["apiVersion"]), f"apiVersion must be one of {VERSIONS}, got {doc.get('apiVersion')!r}"
        )
    if kind == "SLI" or kind in IGNORED_KINDS:
        return []
    if doc.get("apiVersion") == V1ALPHA and kind == "SLO":
        doc = from_v1alpha(doc, file)
    slis, sources, policies = refs  # per parse: nothing module-level, so files may be parsed concurrently
    if kind != "SLO":
        raise SpecError.at(file, line_at(doc, ["kind"]), f"unsupported kind {kind!r}; expected SLO")
    try:
        slo = _SLODoc.model_validate(doc)
    except ValidationError as e:
        raise from_validation_error(e, file, doc) from None

    def fail(path: Sequence[Any], err: Exception, at: LocDict = doc) -> SpecError:
        return SpecError.at(file, line_at(at, path), str(err))

    spec = slo.spec
    if spec.budgetingMethod != "Occurrences":
        raise fail(
            ["spec", "budgetingMethod"],
            FieldError(
                f"spec.budgetingMethod {spec.budgetingMethod!r} is not supported: inferwatch budgets Occurrences "
                "(bad events over all events); Timeslices (share of good minutes) is not implemented"
            ),
        )
    if spec.indicator is not None:
        sli_spec, sli_doc, sli_path = spec.indicator.spec, doc, ["spec", "indicator", "spec"]
    else:
        if spec.indicatorRef not in slis:
            raise fail(
                ["spec", "indicatorRef"],
                FieldError(f"indicatorRef {spec.indicatorRef!r}: no kind: SLI document with that name in {file}"),
            )
        ref_doc, sli_doc = slis[spec.indicatorRef]
        sli_spec, sli_path = ref_doc.spec, ["spec"]
    try:
        name = check_name(slo.metadata.name, "metadata.name")
    except FieldError as e:
        raise fail(["metadata", "name"], e) from None
    try:
        service = check_name(spec.service, "spec.service")
    except FieldError as e:
        raise fail(["spec", "service"], e) from None
    try:
        labels = check_labels({k: v for k, v in (slo.metadata.labels or {}).items()})
    except FieldError as e:
        raise fail(["metadata", "labels"], e) from None
    try:
        alerting = _alerting(slo.metadata.annotations)
    except FieldError as e:
        raise fail(["metadata", "annotations"], e) from None
    for i, policy in enumerate(spec.alertPolicies or []):
        try:
            alerting = routing.apply_policy(alerting, policy, policies)
        except FieldError as e:
            raise fail(["spec", "alertPolicies", i], e) from None
    try:
        window = _window(spec.timeWindow[0])
    except FieldError as e:
        raise fail(["spec", "timeWindow", 0], e) from None

    out = []
    for i, obj in enumerate(spec.objectives):
        try:
            if sli_spec.ratioMetric is not None:
                sli, selector = classify_ratio(sli_spec.ratioMetric, sources)
            else:
                assert sli_spec.thresholdMetric is not None
                sli, selector = classify_threshold(sli_spec.thresholdMetric, obj, sources)
        except FieldError as e:
            metric = "ratioMetric" if sli_spec.ratioMetric is not None else "thresholdMetric"
            if e.path == ("objective",):
                raise fail(["spec", "objectives", i], e) from None
            rel = [p for p in e.path if p != "."]
            raise fail([*sli_path, metric, *rel], e, sli_doc) from None
        try:
            objective = (
                objective_from_ratio(obj.target)
                if obj.target is not None
                else objective_from_percent(obj.targetPercent)
            )
            suffix = obj.name or obj.displayName or str(i + 1)
            slo_name = (
                name
                if len(spec.objectives) == 1
                else check_name(f"{name}-{re.sub(r'[^a-z0-9_-]+', '-', suffix.lower()).strip('-_')}", "objective name")
            )
        except FieldError as e:
            raise fail(["spec", "objectives", i], e) from None
        out.append(
            SLO(
                service=service,
                name=slo_name,
                sli=sli,
                objective=objective,
                window=window,
                selector=selector,
                alerting=alerting,
                description=spec.description,
                labels=labels,
                source=Source(file, line_at(doc, ["spec", "objectives", i]), OPENSLO_VERSION),
            )
        )
    return out
