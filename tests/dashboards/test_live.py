"""Every panel query against a real Prometheus that scraped a real gateway and worker after traffic."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from dashboards.cli import app
from dashboards.definitions import all_dashboards
from dashboards.promql import VARIABLES
from dashboards.query import PrometheusClient, Window, run_dashboard, run_panel
from slo.spec import load_default_slos
from tests.dashboards._stack import Stack

DASHBOARDS = all_dashboards(load_default_slos())


@pytest.fixture(scope="module")
def client(stack: Stack):
    c = PrometheusClient(stack.prometheus.url)
    yield c
    c.close()


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda d: d.uid)
def test_every_query_runs_and_core_panels_return_data(dashboard, client: PrometheusClient) -> None:
    results = run_dashboard(client, dashboard, Window(120, rate_interval="30s"))
    assert [e for r in results for e in r.errors] == []
    empty = [r.panel.title for r in results if r.panel.core and not r.has_values()]
    assert empty == []
    assert sum(r.panel.core for r in results) >= 10


def test_variables_have_values(stack: Stack) -> None:
    """The template variables' label_values() queries find the scraped labels."""
    for v in VARIABLES.values():
        metric, label = v.query.removeprefix("label_values(").rstrip(")").rsplit(", ", 1)
        metric = metric.replace('=~"$alias"', '=~".*"')
        found = httpx.get(f"{stack.prometheus.url}/api/v1/label/{label}/values", params={"match[]": metric}).json()[
            "data"
        ]
        assert found, v.name
    assert "demo" in httpx.get(f"{stack.prometheus.url}/api/v1/label/model_alias/values").json()["data"]


def test_numbers_match_the_traffic(stack: Stack, client: PrometheusClient) -> None:
    """Spot-check that panels show the traffic sent, not just any data."""
    executive = {p.key: p for p in DASHBOARDS[0].panels()}
    # as of the end of the traffic: read later (a slow machine, the tests before), a 30 s rate is 0
    window = Window(120, end=stack.settled_at, rate_interval="30s")

    share = {
        s.labels.get("model_alias", ""): s.points[-1][1]
        for s in run_panel(client, executive["version_share"], window).results[0].series
    }
    assert share["demo"] > 0.9 and sum(share.values()) == pytest.approx(1.0)
    cost = {
        s.labels["tenant"]: s.points[-1][1] for s in run_panel(client, executive["cost_30d"], window).results[0].series
    }
    # (initech's and umbrella's cost series were born with all their cost: increase() sees none of it)
    assert set(cost) == {"acme", "globex", "initech", "umbrella"} and cost["acme"] > 0 and cost["globex"] > 0

    # only acme opted in to the cache, and only its repeated deterministic request was answered from it
    hit_rate = {
        s.labels["tenant"]: s.points[-1][1]
        for s in run_panel(client, executive["cache_hit_rate"], window).results[0].series
    }
    # (how many lookups fall in the panel's rate window depends on timing: a share, not a number)
    assert set(hit_rate) == {"acme"} and 0 < hit_rate["acme"] <= 1
    used = {
        s.labels["tenant"]: s.points[-1][1]
        for s in run_panel(client, executive["budget_used"], window).results[0].series
    }
    assert set(used) == {"acme", "globex", "initech", "umbrella"}
    assert all(0 < used[t] < 1 for t in ("acme", "globex", "initech"))  # a few cents of the $1 budget
    assert used["umbrella"] > 1  # its millionth of a dollar, spent by its first request

    debug = {p.key: p for p in next(d for d in DASHBOARDS if d.uid == "inferwatch-debug").panels()}
    refused = {
        (s.labels["tenant"], s.labels["limit"])
        for s in run_panel(client, debug["rate_limited"], window).results[0].series
    }
    assert refused == {("initech", "requests"), ("umbrella", "budget")}  # the limit label: requests | tokens | budget
    budget = {s.labels["tenant"] for s in run_panel(client, debug["budget_refusals"], window).results[0].series}
    assert budget == {"umbrella"}
    # every request tried the broken replica first, so there is one retried upstream, retrying all the time
    retries = run_panel(client, debug["retries"], window).results[0].series
    assert len(retries) == 1 and retries[0].points[-1][1] > 0


def test_preview_draws_png_per_dashboard(stack: Stack, tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app,
        [
            "preview",
            "--prometheus",
            stack.prometheus.url,
            "--out",
            str(tmp_path),
            "--range",
            "5m",
            "--rate-interval",
            "30s",
        ],
    )
    assert res.exit_code == 0, res.output
    pngs = sorted(tmp_path.glob("*.png"))
    assert [p.stem for p in pngs] == sorted(d.uid for d in DASHBOARDS)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 20_000 for p in pngs)
