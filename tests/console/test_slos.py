"""The SLO pages in Chromium: the list and an SLO's burn rates are the SLO engine's
(`GET /v1/slos`, which is `inferwatch slo status --json`'s shape) for the same traffic."""

from __future__ import annotations

import json
import time

import pytest
from typer.testing import CliRunner

from slo import cli as slo_cli

from tests.console.conftest import ADMIN_KEY, Console, shot, sign_in
from tests.servers import wait_until

SLO = "inferwatch-availability"


@pytest.fixture(scope="module", autouse=True)
def failing_traffic(console: Console) -> None:
    console.chat("acme", n=8)
    console.stubs["v1"].behaviour.fail_status = 503
    try:
        # the upstream's 503 goes on to the client (with its Retry-After, where it sent one)
        assert {r["status"] for r in console.chat("acme", n=4)} == {503}
    finally:
        console.stubs["v1"].behaviour.fail_status = None
    # The SLO job (every second here) has evaluated the traffic once the API shows it.
    wait_until(
        lambda: (console.api("GET", f"/v1/slos/{SLO}").json().get("total") or 0) >= 12, "the SLO job to see the traffic"
    )
    time.sleep(1.5)  # and recorded a history row with it


def shown(value: str) -> float | None:
    return None if value == "–" else float(value.replace(",", ""))


def test_the_list_shows_every_slo_with_its_state(console: Console, browser) -> None:
    api = {s["id"]: s for s in console.api("GET", "/v1/slos").json()["data"]}
    page = sign_in(browser, console.url, ADMIN_KEY)
    page.click("nav >> text=SLOs")
    rows = page.locator("#slos tbody tr")
    assert sorted(r.get_attribute("data-slo") for r in rows.all()) == sorted(api)
    status = page.locator(f"#slos tr[data-slo='{SLO}'] td").nth(5).inner_text()
    assert status == api[SLO]["status"]
    shot(page, "slos")
    page.context.close()


def test_an_slo_shows_its_burn_rates_against_the_factors(console: Console, browser) -> None:
    page = sign_in(browser, console.url, ADMIN_KEY)
    page.goto(console.url + "/ui/slos")
    page.click(f"a:text-is('{SLO}')")
    api = console.api("GET", f"/v1/slos/{SLO}").json()
    windows = api["alerts"]["page"]["windows"] + api["alerts"]["ticket"]["windows"]
    assert len(windows) == 4 and page.locator("#burn tbody tr").count() == 4
    for w in windows:
        row = page.locator(f"#burn tr[data-pair='{w['long']}/{w['short']}']")
        assert shown(row.locator("td[data-k=factor]").inner_text()) == pytest.approx(w["factor"], abs=0.005)
        for k, window in (("long", w["long"]), ("short", w["short"])):
            rate = api["burn_rates"][window]
            assert rate is not None and rate > 0  # a third of the requests failed
            assert shown(row.locator(f"td[data-k={k}]").inner_text()) == pytest.approx(rate, abs=0.0005)
    assert page.locator("#slo-status").inner_text().startswith(api["status"])
    assert page.locator("#changes tbody tr").count() >= 1
    shot(page, "slo")
    page.context.close()


def test_an_unknown_slo_is_a_404_page(console: Console, browser) -> None:
    page = sign_in(browser, console.url, ADMIN_KEY)
    response = page.goto(console.url + "/ui/slos/no-such-slo")
    assert response.status == 404 and "No SLO" in page.locator("#error-message").inner_text()
    response = page.goto(console.url + "/ui/slos/" + SLO + "?limit=zero")
    assert response.status == 400 and "limit" in page.locator("#error-message").inner_text()
    page.context.close()


def test_the_list_equals_inferwatch_slo_status_json(console: Console, browser, tmp_path) -> None:
    res = CliRunner().invoke(
        slo_cli.app,
        ["status", "--json", "--data-dir", str(tmp_path)],
        env={"INFERWATCH_DATABASE_URL": console.ledger_url},
    )
    assert res.exit_code in (0, 1), res.output  # 1: a page fires, as it should here
    cli = {s["id"]: s for s in json.loads(res.stdout)}
    page = sign_in(browser, console.url, ADMIN_KEY)
    page.goto(console.url + "/ui/slos")
    assert cli[SLO]["status"] == "page"
    for tr in page.locator("#slos tbody tr").all():
        s = cli[tr.get_attribute("data-slo")]
        cells = tr.locator("td").all_inner_texts()
        assert cells[5] == s["status"]
        assert cells[4] == ("–" if s["budget_remaining"] is None else f"{100 * s['budget_remaining']:.1f} %")
        assert cells[6] == ("firing" if s["alerts"]["page"]["firing"] else "–")
    page.context.close()
