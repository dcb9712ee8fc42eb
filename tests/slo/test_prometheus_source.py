"""Issue 21 point 3: SLIs on any metric are evaluated from a real Prometheus (backfilled with
`promtool tsdb create-blocks-from openmetrics`) through its HTTP API, and agree with the
built-in evaluator on the same counts; without `prometheus_url` the service says it cannot."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import Engine

from alerts.rules import render_rules
from slo.evaluator import MinuteSeries, evaluate
from slo.prometheus_source import PrometheusError, evaluate_prometheus
from slo.service import SLOService
from slo.spec import load_specs, parse_specs
from tests.servers import Proc, free_port, wait_ready

HERE = Path(__file__).parent / "sloth_compat"
CHECKOUT, RAW = load_specs([HERE / "checkout.prometheus-v1.yaml"])
GROUPED = parse_specs(
    """\
service: api
slos:
  - name: handlers
    objective: 99
    window: 7d
    sli: {events: {error_query: 'http_requests_total{job="api",code="503"}',
                   total_query: 'http_requests_total{job="api"}', group_by: [handler]}}
    alerting: {no_traffic_after: 10m}
""",
    "g.yaml",
)[0]
MINUTES, BAD_FROM = 120, 100
# the data starts at a whole hour well inside Prometheus' retention
BASE = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=4)


def _per_minute(m: int) -> dict[str, tuple[int, int]]:
    """(ok, bad) requests in minute m of each series family."""
    bad = m >= BAD_FROM
    return {"checkout": (100, 50 if bad else 0), "/a": (100 if not bad else 0, 100 if bad else 0), "/b": (100, 0)}


def _openmetrics() -> str:
    lines = ["# TYPE http_requests counter"]
    totals: dict[str, int] = {}
    for m in range(MINUTES + 1):
        ts = int((BASE + timedelta(minutes=m)).timestamp())
        for key, labels in (
            ("c200", 'code="200",job="checkout"'),
            ("c429", 'code="429",job="checkout"'),
            ("a200", 'code="200",handler="/a",job="api"'),
            ("a503", 'code="503",handler="/a",job="api"'),
            ("b200", 'code="200",handler="/b",job="api"'),
        ):
            lines.append(f"http_requests_total{{{labels}}} {1000 + totals.get(key, 0)} {ts}")
        if m < MINUTES:
            pm = _per_minute(m)
            for key, add in (
                ("c200", pm["checkout"][0]),
                ("c429", pm["checkout"][1]),
                ("a200", pm["/a"][0]),
                ("a503", pm["/a"][1]),
                ("b200", pm["/b"][0]),
            ):
                totals[key] = totals.get(key, 0) + add
    return "\n".join(lines) + "\n# EOF\n"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if binary is None or promtool is None:
        pytest.skip("prometheus and promtool are needed (Debian package prometheus)")
    tmp = tmp_path_factory.mktemp("prom")
    (tmp / "data.om").write_text(_openmetrics())
    proc = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(tmp / "data.om"), str(tmp / "tsdb")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rules = tmp / "rules.yaml"  # Prometheus must accept the rules of these SLOs as well
    rules.write_text(render_rules([CHECKOUT, RAW, GROUPED], operational=False).to_yaml())
    (tmp / "prometheus.yml").write_text(yaml.safe_dump({"rule_files": [str(rules)], "scrape_configs": []}))
    port, log = free_port(), tmp / "prometheus.log"
    out = log.open("w")
    p = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=30d",
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, p, log, path="/-/ready", deadline_s=120)
        yield Proc(url, p, log).url
    finally:
        p.terminate()
        p.wait(timeout=30)
        out.close()


def _ledger_like(key: str) -> MinuteSeries:
    """The same traffic as the built-in evaluator's per-minute (good, total)."""
    rows = [(int((BASE + timedelta(minutes=m)).timestamp()) // 60, *_per_minute(m)[key]) for m in range(MINUTES)]
    return MinuteSeries.from_points((m, ok, ok + bad) for m, ok, bad in rows)


@pytest.mark.parametrize("minute", [90, 110])
def test_prometheus_and_the_evaluator_agree(prometheus: str, minute: int) -> None:
    at = BASE + timedelta(minutes=minute)
    (ev,) = evaluate_prometheus(CHECKOUT, prometheus, at).values()
    want = evaluate(CHECKOUT, _ledger_like("checkout"), now=at)
    assert (ev.page.firing, ev.ticket.firing) == (want.page.firing, want.ticket.firing) == (minute > BAD_FROM,) * 2
    for w in ("5m", "30m", "1h"):
        assert ev.windows[w].error_ratio == pytest.approx(want.windows[w].error_ratio, rel=1e-9, abs=1e-12), w
        assert ev.windows[w].total == pytest.approx(want.windows[w].total, rel=1e-9), w
    if minute > BAD_FROM:
        assert ev.windows["5m"].error_ratio == pytest.approx(1 / 3)  # a 429 counts as an error


def test_groups_are_evaluated_apart(prometheus: str) -> None:
    groups = evaluate_prometheus(GROUPED, prometheus, BASE + timedelta(minutes=110))
    assert set(groups) == {(("handler", "/a"),), (("handler", "/b"),)}
    assert groups[(("handler", "/a"),)].page.firing and not groups[(("handler", "/b"),)].page.firing
    assert not any(g.no_traffic for g in groups.values())
    # 30 minutes after the data ends the series are gone (the long windows still see them):
    # no data, not "no traffic", and no alert from the short windows
    late = evaluate_prometheus(GROUPED, prometheus, BASE + timedelta(minutes=MINUTES + 30))
    assert len(late) == 2 and all(g.no_data and not g.no_traffic for g in late.values())
    assert all(g.windows["5m"].error_ratio is None for g in late.values())


def test_the_service_evaluates_query_slis_only_with_a_prometheus(prometheus: str, sqlite_engine: Engine) -> None:
    at = BASE + timedelta(minutes=110)
    without = {st.slo.id: st for st in SLOService(sqlite_engine, [CHECKOUT, GROUPED]).evaluate_all(at)}
    assert {st.status for st in without.values()} == {"unsupported"}
    assert "slo.prometheus_url" in (without[CHECKOUT.id].reason or "")
    svc = SLOService(sqlite_engine, [CHECKOUT, RAW, GROUPED], prometheus_url=prometheus)
    got = {st.slo.id: st for st in svc.evaluate_all(at)}
    assert got[CHECKOUT.id].status == "page" and got[GROUPED.id].status == "page"
    assert got[GROUPED.id].reason == "worst of 2 groups: handler=/a"
    assert got[RAW.id].status == "no_data"  # its histogram is not in this Prometheus
    down = SLOService(sqlite_engine, [CHECKOUT], prometheus_url=f"http://127.0.0.1:{free_port()}")
    (st,) = down.evaluate_all(at)
    assert st.status == "error" and st.reason.startswith("Prometheus:")  # type: ignore[union-attr]


def test_refused_promql_is_an_error_not_a_crash(prometheus: str) -> None:
    bad = parse_specs(
        "slos:\n  - name: x\n    objective: 99\n    sli: {raw: {error_ratio_query: 'sum(rate(x[{{.window}}]'}}\n"
    )
    with pytest.raises(PrometheusError, match="bad_data"):
        evaluate_prometheus(bad[0], prometheus, BASE, client=httpx.Client(timeout=10))
