"""Public names of the SLO rules and alerts: a contract, as Sloth's `pkg/common/conventions`.

Existing Sloth dashboards, Alertmanager routes and silences match on these names, so they are
spelled here once and every generator (rules, promtool tests, runbooks, dashboards, the
notifier) imports them. `tests/slo/test_conventions.py` pins them.
"""

from __future__ import annotations

from typing import Final

# -- recording rules ----------------------------------------------------------------------------
SLI_ERROR_RATIO: Final = "slo:sli_error:ratio_rate{window}"
OBJECTIVE_RATIO: Final = "slo:objective:ratio"
ERROR_BUDGET_RATIO: Final = "slo:error_budget:ratio"
TIME_PERIOD_DAYS: Final = "slo:time_period:days"
CURRENT_BURN_RATE_RATIO: Final = "slo:current_burn_rate:ratio"
PERIOD_BURN_RATE_RATIO: Final = "slo:period_burn_rate:ratio"
PERIOD_ERROR_BUDGET_REMAINING_RATIO: Final = "slo:period_error_budget_remaining:ratio"
SLO_INFO: Final = "sloth_slo_info"

# -- labels -------------------------------------------------------------------------------------
LABEL_ID: Final = "sloth_id"
LABEL_SERVICE: Final = "sloth_service"
LABEL_SLO: Final = "sloth_slo"
LABEL_WINDOW: Final = "sloth_window"
LABEL_SEVERITY: Final = "sloth_severity"
LABEL_VERSION: Final = "sloth_version"
LABEL_MODE: Final = "sloth_mode"
LABEL_SPEC: Final = "sloth_spec"
LABEL_OBJECTIVE: Final = "sloth_objective"
ID_LABELS: Final = (LABEL_ID, LABEL_SERVICE, LABEL_SLO)

# -- rule groups (one of each per SLO, suffixed with its id) -------------------------------------
SLI_GROUP_PREFIX: Final = "sloth-slo-sli-recordings-"
META_GROUP_PREFIX: Final = "sloth-slo-meta-recordings-"
ALERT_GROUP_PREFIX: Final = "sloth-slo-alerts-"

# -- alerts (defaults; an SLO may rename its burn-rate alerts and severity values) ----------------
PAGE_ALERT: Final = "SLOErrorBudgetBurnPage"
TICKET_ALERT: Final = "SLOErrorBudgetBurnTicket"
ABSENT_ALERT: Final = "SLOMetricAbsent"  # the SLI's series is missing (no data)
NO_TRAFFIC_ALERT: Final = "SLONoTraffic"  # opt-in: the series exist but count no events
SEVERITY_LABEL: Final = "severity"
PAGE_SEVERITY: Final = "page"
TICKET_SEVERITY: Final = "ticket"


def sli_error_ratio(window: str) -> str:
    """`slo:sli_error:ratio_rate<window>`, e.g. `slo:sli_error:ratio_rate5m`."""
    return SLI_ERROR_RATIO.format(window=window)


def id_labels(service: str, name: str) -> dict[str, str]:
    """The labels that identify an SLO on every rule: sloth_id, sloth_service, sloth_slo."""
    return {LABEL_ID: slo_id(service, name), LABEL_SERVICE: service, LABEL_SLO: name}


def slo_id(service: str, name: str) -> str:
    """Sloth's `sloth_id`: `<service>-<slo name>`."""
    return f"{service}-{name}"
