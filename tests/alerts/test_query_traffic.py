"""Which query SLIs get synthetic traffic, and the label values picked for their series."""

from __future__ import annotations

import pytest

from alerts.query_traffic import Counter, counter_form, label_sets, satisfies
from slo.model import EventsSLI, RawSLI

W = "{{.window}}"


@pytest.mark.parametrize(
    ("sli", "error", "total", "by"),
    [
        (EventsSLI('http_total{code=~"5.."}', "http_total", ("handler",)), "http_total", "http_total", ("handler",)),
        (
            EventsSLI(f"sum by (route) (rate(errors_total[{W}]))", f"sum by (route)(rate(calls_total[{W}]))"),
            "errors_total",
            "calls_total",
            ("route",),
        ),
        (RawSLI(f"(sum(rate(e_total[{W}])))\n/\n(sum(rate(t_total[{W}])))"), "e_total", "t_total", ()),
    ],
)
def test_sums_of_counter_rates_have_a_counter_form(
    sli: EventsSLI | RawSLI, error: str, total: str, by: tuple[str, ...]
) -> None:
    form = counter_form(sli)
    assert form is not None and (form.error.name, form.total.name, form.group_by) == (error, total, by)


@pytest.mark.parametrize(
    "sli",
    [
        RawSLI(f"1 - avg_over_time(probe_success[{W}])"),
        EventsSLI(f"sum(rate(a_total[{W}])) - sum(rate(b_total[{W}]))", f"sum(rate(b_total[{W}]))"),
        EventsSLI(f"sum by (x)(rate(a_total[{W}]))", f"sum by (y)(rate(a_total[{W}]))"),  # different groups
    ],
)
def test_other_queries_have_none(sli: EventsSLI | RawSLI) -> None:
    assert counter_form(sli) is None


def test_label_values_make_errors_and_good_events_the_queries_tell_apart() -> None:
    form = counter_form(
        EventsSLI(f'sum(rate(h_total{{job="api",code=~"(5..|429)"}}[{W}]))', f'sum(rate(h_total{{job="api"}}[{W}]))')
    )
    assert form is not None
    sets = label_sets(form)
    assert sets is not None and sets.good is not None
    assert form.error.matches("h_total", sets.error) and form.total.matches("h_total", sets.error)
    assert not form.error.matches("h_total", sets.good) and form.total.matches("h_total", sets.good)
    # every series would be an error: no scenarios
    assert label_sets(counter_form(EventsSLI("h_total", "h_total"))) is None


def test_matchers_are_anchored_as_in_prometheus() -> None:
    assert satisfies("500", "=~", "5..") and not satisfies("1500", "=~", "5..")
    assert satisfies("", "!=", "x") and not satisfies("x", "!~", "x|y")
    assert Counter("m", {"a": ("=", "1")}).matches("m", {"a": "1"}) and not Counter("m", {}).matches("n", {})
