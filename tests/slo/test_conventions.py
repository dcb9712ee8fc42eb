"""The public names are a contract (issue 24 point 1): Sloth dashboards, Alertmanager routes and
silences match them. A change here breaks users' setups, so it must be deliberate."""

from __future__ import annotations

import ast
from pathlib import Path

from slo import conventions as c
from tests.servers import ROOT


def test_sloth_names_are_pinned() -> None:
    assert [c.sli_error_ratio(w) for w in ("5m", "30d")] == [
        "slo:sli_error:ratio_rate5m",
        "slo:sli_error:ratio_rate30d",
    ]
    assert (
        c.OBJECTIVE_RATIO,
        c.ERROR_BUDGET_RATIO,
        c.TIME_PERIOD_DAYS,
        c.CURRENT_BURN_RATE_RATIO,
        c.PERIOD_BURN_RATE_RATIO,
        c.PERIOD_ERROR_BUDGET_REMAINING_RATIO,
        c.SLO_INFO,
    ) == (
        "slo:objective:ratio",
        "slo:error_budget:ratio",
        "slo:time_period:days",
        "slo:current_burn_rate:ratio",
        "slo:period_burn_rate:ratio",
        "slo:period_error_budget_remaining:ratio",
        "sloth_slo_info",
    )
    assert (c.LABEL_ID, c.LABEL_SERVICE, c.LABEL_SLO, c.LABEL_WINDOW, c.LABEL_SEVERITY) == (
        "sloth_id",
        "sloth_service",
        "sloth_slo",
        "sloth_window",
        "sloth_severity",
    )
    assert (c.SLI_GROUP_PREFIX, c.META_GROUP_PREFIX, c.ALERT_GROUP_PREFIX) == (
        "sloth-slo-sli-recordings-",
        "sloth-slo-meta-recordings-",
        "sloth-slo-alerts-",
    )
    assert (c.PAGE_ALERT, c.TICKET_ALERT, c.ABSENT_ALERT, c.NO_TRAFFIC_ALERT) == (
        "SLOErrorBudgetBurnPage",
        "SLOErrorBudgetBurnTicket",
        "SLOMetricAbsent",
        "SLONoTraffic",
    )
    assert (c.SEVERITY_LABEL, c.PAGE_SEVERITY, c.TICKET_SEVERITY) == ("severity", "page", "ticket")
    assert c.id_labels("svc", "avail") == {"sloth_id": "svc-avail", "sloth_service": "svc", "sloth_slo": "avail"}


USERS = [
    "alerts/rules.py",
    "alerts/runbooks.py",
    "alerts/promtool_tests.py",
    "dashboards/slo_panels.py",
    "dashboards/definitions.py",
    "slo/notify.py",
]


def test_the_generators_import_the_names_instead_of_spelling_them() -> None:
    # names, not English words such as "severity" that prose also uses
    values = {
        v
        for k, v in vars(c).items()
        if k.isupper() and isinstance(v, str) and (any(ch in v for ch in "_:-") or v[0].isupper())
    }
    for rel in USERS:
        tree = ast.parse((ROOT / rel).read_text())
        imports = {
            a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "slo" for a in n.names
        }
        assert "conventions" in imports, rel
        docstrings = {
            id(n.body[0].value)
            for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef))
            and n.body
            and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant)
        }
        spelled = sorted(
            {
                v
                for n in ast.walk(tree)
                if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
                for v in values
                if v in n.value
            }
        )
        assert not spelled, f"{rel} spells {spelled}; import them from slo.conventions"


def test_rendered_rules_use_the_conventions() -> None:
    from alerts.rules import render_rules
    from slo.spec import load_default_slos

    groups = render_rules(load_default_slos(), operational=False).groups
    assert {g["name"].rsplit("inferwatch-", 1)[0] for g in groups} == {
        c.SLI_GROUP_PREFIX,
        c.META_GROUP_PREFIX,
        c.ALERT_GROUP_PREFIX,
    }
    records = {r["record"] for g in groups for r in g["rules"] if "record" in r}
    assert {c.OBJECTIVE_RATIO, c.SLO_INFO, c.sli_error_ratio("5m"), c.sli_error_ratio("4w")} <= records
    assert Path(c.__file__).name == "conventions.py"
