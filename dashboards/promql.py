"""PromQL building blocks for panels, and the substitution of dashboard variables.

Panels filter with the dashboard variables as regex matchers (`model_alias=~"$alias"`), so
"All" (`.*`) and multi-selections both work. Grafana substitutes them in the browser;
`resolve` does the same for `--check`, the preview and the tests.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from dashboards.model import Variable

# Dashboard variable -> the label it filters.
VARIABLE_LABELS: dict[str, str] = {
    "alias": "model_alias",
    "version": "model_version",
    "tenant": "tenant",
    "worker": "instance",
}
VARIABLES: dict[str, Variable] = {
    "alias": Variable("alias", "Model alias", "label_values(inferwatch_requests_total, model_alias)"),
    "version": Variable(
        "version", "Model version", 'label_values(inferwatch_requests_total{model_alias=~"$alias"}, model_version)'
    ),
    "tenant": Variable("tenant", "Tenant", "label_values(inferwatch_requests_total, tenant)"),
    "worker": Variable("worker", "Worker", "label_values(inferwatch_worker_model_info, instance)"),
}

# What "All" and Grafana's interval variables become outside Grafana.
DEFAULT_VALUES: dict[str, str] = {
    **{name: ".*" for name in VARIABLE_LABELS},
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
}

_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def matchers(*variables: str, extra: str = "") -> str:
    """`{model_alias=~"$alias", ...}` for the given variables, plus `extra` matchers."""
    parts = [f'{VARIABLE_LABELS[v]}=~"${v}"' for v in variables]
    if extra:
        parts.append(extra)
    return "{" + ", ".join(parts) + "}"


SCOPE = ("alias", "version", "tenant")  # the request scope labels every gateway series has


def scoped(metric: str, extra: str = "", variables: tuple[str, ...] = SCOPE) -> str:
    return metric + matchers(*variables, extra=extra)


def sum_rate(selector: str, by: str = "", window: str = "$__rate_interval") -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (rate({selector}[{window}]))"


def sum_increase(selector: str, window: str, by: str = "") -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (increase({selector}[{window}]))"


def quantile(q: float, histogram: str, match: str, by: str = "") -> str:
    labels = f"{by}, le" if by else "le"
    return f"histogram_quantile({q:g}, sum by ({labels}) (rate({histogram}_bucket{match}[$__rate_interval])))"


def resolve(expr: str, values: Mapping[str, str] | None = None) -> str:
    """`expr` with every known variable replaced (`values` over DEFAULT_VALUES); unknown
    variables stay, so that the PromQL check reports them."""
    table = {**DEFAULT_VALUES, **(values or {})}
    return _VAR.sub(lambda m: table.get(m.group(1) or m.group(2), m.group(0)), expr)
