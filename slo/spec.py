"""SLO specs: load YAML files (native inferwatch/v1 or OpenSLO v1) into `slo.model.SLO`s.

Native form (`version: inferwatch/v1`), one file holds a service's SLOs::

    version: inferwatch/v1          # optional
    service: inferwatch             # sloth_service label; default "inferwatch"
    defaults:                       # optional, applied to every SLO below
      window: 28d                   # rolling Nd / Nw (7d..90d) or calendar-month; default 28d
      selector: {model_alias: chat} # see selector below
      alerting: {page: true, ticket: true, no_data_after: 15m}
      labels: {team: platform}      # extra labels on every rule
    slos:
      - name: availability          # [a-z0-9_-], unique per service; sloth_id = service-name
        description: Valid requests answered without a server error.
        objective: 99.5             # percent of good events (not for cost SLOs)
        window: 28d
        sli:                        # exactly one of:
          availability: {}          #   bad = 5xx; valid = all but 4xx
          # latency: {metric: ttft, threshold: 2}   # e2e|ttft|tpot; seconds (2, 0.25, "250ms")
          # safety_incidents: {direction: output}   # input|output; total = all requests
          # cost: {budget_usd_per_1k_requests: 2.0} # spend / allowed spend; no objective
          # events: {error_query: 'sum(rate(http_requests_total{code=~"5.."}[{{.window}}]))',
          #          total_query: 'sum(rate(http_requests_total[{{.window}}]))'}   # Sloth's events
          # events: {error_query: 'http_requests_total{code=~"5..|429"}',         # Pyrra-style
          #          total_query: http_requests_total, group_by: [handler]}      #   counter selectors
          # raw: {error_ratio_query: '...[{{.window}}]...'}                      # Sloth's raw
          # events and raw SLIs are evaluated from Prometheus (slo.prometheus_url), not the ledger
        # availability: {bad_error_types: [rate_limited, budget_exceeded]}  # these 4xx count as errors
        selector:                   # optional, own SLI kinds; each a string or a list of strings
          model_alias: chat
          model_version: [v3, v4]
          tenant: acme
          operation: chat           # availability SLIs only (the other series carry no operation)
          exclude: {tenant: internal}   # != / !~
          group_by: [tenant]        # one SLI and alert per tenant (Pyrra's grouping)
        alerting:
          page: true
          ticket: true
          no_data_after: 15m        # SLOMetricAbsent when the SLI's series is missing this long
          no_traffic_after: 1h      # opt-in SLONoTraffic: series present, no events this long
          # routing (Sloth's alerting block; all optional, defaults unchanged):
          name: MyServiceHighErrorRate          # both burn-rate alerts' name
          labels: {team: platform}              # on every alert of the SLO
          annotations: {runbook: https://...}   # on every alert of the SLO
          page_alert: {name: ..., disable: false, labels: {severity: critical}, annotations: {}}
          ticket_alert: {labels: {severity: warning, channel: "#slo"}}
        labels: {team: platform}

OpenSLO v1 and v1alpha (`slo.openslo`) and Sloth's prometheus/v1 and PrometheusServiceLevel
(`slo.sloth`) are read as well; docs/slo/specs.md lists what each maps to.

A latency threshold must be a bucket bound of its histogram: the metric registry adds every
threshold to its buckets (`slo.thresholds.histogram_buckets`). Errors raise `SpecError`, whose
message names the file and line of every problem.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from slo import openslo, sloth
from slo.model import (
    SELECTOR_LABELS,
    SLO,
    WINDOW_PLACEHOLDER,
    Alerting,
    AlertShape,
    AvailabilitySLI,
    CostSLI,
    EventsSLI,
    LatencyMetric,
    LatencySLI,
    RawSLI,
    SafetySLI,
    Selector,
    Source,
    traffic_labels,
)
from slo.specfields import SpecError as SpecError  # re-exported: callers catch it from here
from slo.specfields import (
    Issue,
    check_alert_labels,
    check_error_type,
    check_alert_name,
    check_labels,
    check_name,
    from_validation_error,
    objective_from_percent,
    parse_minutes,
    parse_threshold,
    parse_window,
    selector_values,
)
from slo.yamlloc import LocDict, YamlError, line_at, load_documents

NATIVE_VERSION: Final = "inferwatch/v1"
DEFAULTS_FILE = Path(__file__).with_name("defaults.yaml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Selector(_Strict):
    model_alias: str | list[str] | None = None
    model_version: str | list[str] | None = None
    tenant: str | list[str] | None = None
    operation: str | list[str] | None = None
    exclude: dict[str, str | list[str]] | None = None
    group_by: list[str] | None = None

    @field_validator("exclude")
    @classmethod
    def _exclude(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        for label in v or {}:
            if label not in SELECTOR_LABELS:
                raise ValueError(f"exclude label {label!r} must be one of {', '.join(SELECTOR_LABELS)}")
        return v

    @field_validator("group_by")
    @classmethod
    def _group_by(cls, v: list[str] | None) -> list[str] | None:
        for label in v or []:
            if label not in SELECTOR_LABELS:
                raise ValueError(f"group_by label {label!r} must be one of {', '.join(SELECTOR_LABELS)}")
        if v is not None and len(set(v)) != len(v):
            raise ValueError("group_by names a label twice")
        return v

    def to_model(self) -> Selector:
        excluded = self.exclude or {}
        exclude = tuple((k, selector_values(excluded[k], k)) for k in SELECTOR_LABELS if k in excluded)
        return Selector.of(
            {k: selector_values(getattr(self, k), k) for k in SELECTOR_LABELS}, exclude, tuple(self.group_by or ())
        )


def _alert_name(v: Any) -> Any:
    return None if v is None else check_alert_name(v)


def _alert_labels(v: Any) -> Any:
    return None if v is None else dict(check_alert_labels(v))


def _alert_annotations(v: Any) -> Any:
    return None if v is None else dict(check_alert_labels(v, "annotation"))


class _AlertShape(_Strict):
    name: str | None = None
    disable: bool | None = None
    labels: dict[str, Any] | None = None
    annotations: dict[str, Any] | None = None

    _name = field_validator("name")(_alert_name)
    _labels = field_validator("labels")(_alert_labels)
    _annotations = field_validator("annotations")(_alert_annotations)

    def to_model(self) -> AlertShape:
        return AlertShape(
            self.name, tuple(sorted((self.labels or {}).items())), tuple(sorted((self.annotations or {}).items()))
        )


class _Alerting(_Strict):
    page: bool | None = None
    ticket: bool | None = None
    no_data_after: str | int | None = None
    no_traffic_after: str | int | None = None
    # routing, as Sloth's alerting block
    name: str | None = None
    labels: dict[str, Any] | None = None
    annotations: dict[str, Any] | None = None
    page_alert: _AlertShape | None = None
    ticket_alert: _AlertShape | None = None

    _name = field_validator("name")(_alert_name)
    _labels = field_validator("labels")(_alert_labels)
    _annotations = field_validator("annotations")(_alert_annotations)

    @field_validator("no_data_after", "no_traffic_after")
    @classmethod
    def _minutes(cls, v: Any, info: ValidationInfo) -> Any:
        return None if v is None else parse_minutes(v, str(info.field_name))


class _Latency(_Strict):
    metric: Literal["e2e", "ttft", "tpot"]
    threshold: float | str

    @field_validator("threshold")
    @classmethod
    def _threshold(cls, v: Any) -> float:
        return parse_threshold(v)


class _Safety(_Strict):
    direction: Literal["input", "output"] = "output"


class _Cost(_Strict):
    budget_usd_per_1k_requests: float = Field(gt=0, allow_inf_nan=False)


class _Availability(_Strict):
    bad_error_types: list[str] | None = None  # 4xx error types that count as errors (the gateway's 429s: rate_limited)

    @field_validator("bad_error_types")
    @classmethod
    def _types(cls, v: list[str] | None) -> list[str] | None:
        for t in v or []:
            check_error_type(t)
        return v


class _Events(_Strict):
    error_query: str = Field(min_length=1)
    total_query: str = Field(min_length=1)
    group_by: list[str] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "_Events":
        templated = [bool(WINDOW_PLACEHOLDER.search(q)) for q in (self.error_query, self.total_query)]
        if templated[0] != templated[1]:
            raise ValueError(
                "error_query and total_query must both use {{.window}} (whole queries, Sloth) "
                "or neither (counter selectors, summed over each window)"
            )
        if templated[0] and self.group_by:
            raise ValueError("group_by applies to counter selectors; whole queries group themselves (sum by)")
        for label in self.group_by or []:
            check_alert_labels({label: ""})
        return self


class _Raw(_Strict):
    error_ratio_query: str = Field(min_length=1)

    @field_validator("error_ratio_query")
    @classmethod
    def _window(cls, v: str) -> str:
        if not WINDOW_PLACEHOLDER.search(v):
            raise ValueError("error_ratio_query must use {{.window}} for the range of each window")
        return v


class _SLI(_Strict):
    availability: _Availability | None = None
    latency: _Latency | None = None
    safety_incidents: _Safety | None = None
    cost: _Cost | None = None
    events: _Events | None = None
    raw: _Raw | None = None

    @model_validator(mode="before")
    @classmethod
    def _empty_means_defaults(cls, data: Any) -> Any:
        # `availability:` with no value means "with defaults", like `availability: {}`.
        if isinstance(data, dict):
            return {k: ({} if v is None else v) for k, v in data.items()}
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> "_SLI":
        given = [k for k in SLI_KEYS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"sli must have exactly one of {', '.join(SLI_KEYS)}" + (f" (got {', '.join(given)})" if given else "")
            )
        return self


def _check_window(v: str | None) -> str | None:
    if v is not None:
        parse_window(v)
    return v


def _check_labels(v: dict[str, Any] | None) -> dict[str, Any] | None:
    if v is not None:
        check_labels(v)
    return v


class _Defaults(_Strict):
    window: str | None = None
    selector: _Selector | None = None
    alerting: _Alerting | None = None
    labels: dict[str, Any] | None = None

    _window = field_validator("window")(_check_window)
    _labels = field_validator("labels")(_check_labels)


class _SLO(_Strict):
    name: str
    description: str = ""
    objective: float | str | None = None
    window: str | None = None
    sli: _SLI
    selector: _Selector | None = None
    alerting: _Alerting | None = None
    labels: dict[str, Any] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)

    _window = field_validator("window")(_check_window)
    _labels = field_validator("labels")(_check_labels)

    @field_validator("objective")
    @classmethod
    def _objective(cls, v: Any) -> Any:
        if v is not None:
            objective_from_percent(v)
        return v


class _File(_Strict):
    version: Literal["inferwatch/v1"] = NATIVE_VERSION
    service: str = "inferwatch"
    defaults: _Defaults = _Defaults()
    slos: list[_SLO] = Field(min_length=1)

    @field_validator("service")
    @classmethod
    def _service(cls, v: str) -> str:
        return check_name(v, "service")


SLI_KEYS = ("availability", "latency", "safety_incidents", "cost", "events", "raw")


def _sli_model(sli: _SLI) -> Any:
    if sli.events is not None:
        return EventsSLI(sli.events.error_query, sli.events.total_query, tuple(sli.events.group_by or ()))
    if sli.raw is not None:
        return RawSLI(sli.raw.error_ratio_query)
    if sli.availability is not None:
        return AvailabilitySLI(tuple(sorted(set(sli.availability.bad_error_types or ()))))
    if sli.latency is not None:
        return LatencySLI(LatencyMetric(sli.latency.metric), float(sli.latency.threshold))
    if sli.safety_incidents is not None:
        return SafetySLI(sli.safety_incidents.direction)
    assert sli.cost is not None
    return CostSLI(sli.cost.budget_usd_per_1k_requests)


def _merge_alerting(*layers: _Alerting | None) -> Alerting:
    """Later layers win field by field; labels and annotations merge key by key."""
    out: dict[str, Any] = {}
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    for layer in layers:
        if layer is not None:
            labels |= layer.labels or {}
            annotations |= layer.annotations or {}
            if layer.name is not None:
                out["name"] = layer.name
            for sev in ("page", "ticket"):
                shape = getattr(layer, f"{sev}_alert")
                if shape is not None:
                    out[f"{sev}_alert"] = shape.to_model()
                    if shape.disable is not None:
                        out[sev] = not shape.disable
            if layer.page is not None:
                out["page"] = layer.page
            if layer.ticket is not None:
                out["ticket"] = layer.ticket
            if layer.no_data_after is not None:
                out["no_data_after_minutes"] = layer.no_data_after
            if layer.no_traffic_after is not None:
                out["no_traffic_after_minutes"] = layer.no_traffic_after
    return Alerting(**out, labels=tuple(sorted(labels.items())), annotations=tuple(sorted(annotations.items())))


def _native(doc: LocDict, file: str, fmt: str = NATIVE_VERSION) -> list[SLO]:
    try:
        spec = _File.model_validate({k: v for k, v in doc.items() if not (fmt != NATIVE_VERSION and k == "version")})
    except ValidationError as e:
        raise from_validation_error(e, file, doc) from None
    out = []
    d = spec.defaults
    for i, s in enumerate(spec.slos):
        path = ["slos", i]
        if s.sli.cost is not None and s.objective is not None:
            raise SpecError.at(
                file,
                line_at(doc, [*path, "objective"]),
                f"{s.name}: a cost SLO has no objective; its budget is budget_usd_per_1k_requests",
            )
        if s.sli.cost is None and s.objective is None:
            raise SpecError.at(
                file, line_at(doc, path), f"{s.name}: objective (percent of good events, e.g. 99.5) is required"
            )
        labels = check_labels({**(d.labels or {}), **(s.labels or {})})
        window = parse_window(s.window or d.window or "28d")
        sel = (s.selector or d.selector or _Selector()).to_model()
        sli = _sli_model(s.sli)
        _check_selector(sli, sel, s.selector is not None, file, line_at(doc, [*path, "selector"]) or line_at(doc, path))
        if isinstance(sli, (EventsSLI, RawSLI)):
            sel = Selector()  # a query SLI selects with its queries (a file's default selector is for the others)
        alerting = _merge_alerting(d.alerting, s.alerting)
        if isinstance(sli, RawSLI) and alerting.no_traffic_after_minutes is not None:
            raise SpecError.at(
                file,
                line_at(doc, [*path, "alerting"]),
                f"{s.name}: a raw SLI counts no events, so it cannot have no_traffic_after",
            )
        out.append(
            SLO(
                service=spec.service,
                name=s.name,
                sli=sli,
                objective=0.0 if isinstance(sli, CostSLI) else objective_from_percent(s.objective),
                window=window,
                selector=sel,
                alerting=alerting,
                description=s.description,
                labels=labels,
                source=Source(file, line_at(doc, path), fmt),
            )
        )
    return out


def _check_selector(sli: Any, sel: Selector, own: bool, file: str, line: int) -> None:
    """An own-kind SLI selects and groups only by labels all of its series carry; a query SLI
    selects with its queries (`own`: the SLO sets a selector itself, not only the file's defaults)."""
    if isinstance(sli, (EventsSLI, RawSLI)):
        if own:
            raise SpecError.at(
                file,
                line,
                f"selector applies to inferwatch's own SLI kinds; {sli.kind.value} SLIs select with their queries",
            )
        return
    extra = sorted(sel.labels() - set(traffic_labels(sli)))
    if extra:
        raise SpecError.at(
            file,
            line,
            f"selector label {', '.join(extra)}: a {sli.kind.value} SLI's series carry only "
            f"{', '.join(traffic_labels(sli))} (operation is on inferwatch_requests_total and the request "
            "rollups only, so only an availability SLI selects or groups by it)",
        )


def looks_like(doc: Any) -> str:
    """What a document we cannot read looks like, for the error message."""
    if not isinstance(doc, dict):
        return "not a mapping"
    api, kind, version = doc.get("apiVersion"), doc.get("kind"), doc.get("version")
    if isinstance(api, str) and api.startswith("pyrra.dev/"):
        return f"a Pyrra {kind or 'resource'} ({api}); write it as OpenSLO or inferwatch/v1"
    if isinstance(api, str) and api.startswith("monitoring.coreos.com/"):
        return f"a Prometheus Operator {kind or 'resource'} ({api}): rules, not an SLO spec"
    if isinstance(api, str) and api.startswith("openslo/"):
        return f"OpenSLO {api}; inferwatch reads openslo/v1 and openslo/v1alpha"
    if api is not None:
        return f"a Kubernetes-style resource {api} {kind or ''}".rstrip()
    if "groups" in doc:
        return "a Prometheus rule file (groups:), not an SLO spec"
    if version is not None:
        return f"version {version!r}; inferwatch reads {NATIVE_VERSION} and Sloth's {sloth.PROMETHEUS_V1}"
    return "no known SLO format"


def _documents(docs: list[Any]) -> list[Any]:
    """Documents, with a top-level list (several OpenSLO documents in one) flattened."""
    out: list[Any] = []
    for d in docs:
        out.extend(d if isinstance(d, list) else [d])
    return out


def parse_document(doc: Any, file: str, refs: Any) -> list[SLO]:
    """The SLOs of one document, in whichever format it is."""
    if not isinstance(doc, LocDict):
        raise SpecError.at(file, getattr(doc, "line", 1), "a spec document must be a mapping")
    api, version = doc.get("apiVersion"), doc.get("version")
    if api == sloth.K8S_API:
        return _native(sloth.from_k8s(doc, file), file, sloth.K8S_API)
    if version == sloth.PROMETHEUS_V1:
        return _native(sloth.from_prometheus_v1(doc, file), file, sloth.PROMETHEUS_V1)
    if api in openslo.VERSIONS:
        return openslo.parse_document(doc, file, refs)
    if version == NATIVE_VERSION or (version is None and api is None and "slos" in doc):
        return _native(doc, file)
    raise SpecError.at(
        file,
        doc.line,
        f"not an SLO spec inferwatch reads: this looks like {looks_like(doc)}. "
        f"Read: {NATIVE_VERSION}, Sloth {sloth.PROMETHEUS_V1} and {sloth.K8S_API} "
        f"{sloth.K8S_KIND}, OpenSLO {' and '.join(openslo.VERSIONS)}",
    )


def parse_specs(text: str, file: str = "<string>") -> list[SLO]:
    """Every SLO in a YAML text (native, Sloth or OpenSLO documents, possibly mixed)."""
    try:
        docs = _documents(load_documents(text))
    except YamlError as e:
        raise SpecError.at(file, e.line, e.message) from None
    refs = openslo.collect_refs(docs, file)
    out: list[SLO] = []
    for doc in docs:
        out.extend(parse_document(doc, file, refs))
    return out


def load_specs(paths: Iterable[str | Path]) -> list[SLO]:
    """SLOs from every file; ids (service-name) must be unique across all files."""
    out: list[SLO] = []
    for p in paths:
        path = Path(p)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise SpecError.at(str(path), 0, f"cannot read spec: {e.strerror or e}") from None
        out.extend(parse_specs(text, str(path)))
    check_unique(out)
    return out


def load_default_slos() -> list[SLO]:
    """The demo's default SLOs (slo/defaults.yaml)."""
    return load_specs([DEFAULTS_FILE])


def shared_traffic(slos: Iterable[SLO]) -> list[str]:
    """Warnings for SLOs of different services that render the same expressions: our own SLI
    kinds read inferwatch's metrics, which carry no service label, so `service` names an SLO
    but does not select traffic (they would alert twice on the same requests)."""
    first: dict[tuple[Any, ...], SLO] = {}
    out = []
    for s in slos:
        if isinstance(s.sli, (EventsSLI, RawSLI)):
            continue
        other = first.setdefault((s.sli, s.selector), s)
        if other.service != s.service:
            src = s.source or Source("<unknown>", 0, "")
            out.append(
                f"{src.file}:{src.line}: {s.id} selects the same traffic as {other.id}: service names an "
                "SLO, it does not select traffic on inferwatch's metrics; set selector (model_alias, "
                "model_version, tenant) or write an events SLI on the service's own metric"
            )
    return out


def check_unique(slos: Iterable[SLO]) -> None:
    seen: dict[str, SLO] = {}
    issues = []
    for s in slos:
        if s.id in seen:
            first = seen[s.id].source
            where = f" (first defined at {first.file}:{first.line})" if first else ""
            src = s.source or Source("<unknown>", 0, "")
            issues.append(Issue(src.file, src.line, f"duplicate SLO id {s.id!r}{where}"))
        else:
            seen[s.id] = s
    if issues:
        raise SpecError(issues)
