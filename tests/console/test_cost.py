"""Cost and budgets in Chromium: the spend and budgets are GET /v1/usage's; a tenant sees its
own; the weekly reports written are listed and open."""

from __future__ import annotations

import pytest

from reports.service import ReportService
from tests.console.conftest import ADMIN_KEY, Console, shot, sign_in


@pytest.fixture(scope="module", autouse=True)
def traffic(console: Console) -> None:
    console.chat("acme", n=5)
    console.chat("globex", n=2)


def test_spend_and_budgets_equal_the_usage_api(console: Console, browser) -> None:
    usage = console.api("GET", "/v1/usage").json()
    page = sign_in(browser, console.url, ADMIN_KEY)
    page.click("nav >> text=Cost")
    shown = float(page.locator("#cost-total").get_attribute("data-v"))
    assert shown == pytest.approx(usage["totals"]["cost_usd"], abs=1e-9)
    for t in ("acme", "globex"):
        want = sum(d["cost_usd"] for d in usage["data"] if d["tenant"] == t)
        got = page.locator(f"#by-tenant tr[data-tenant='{t}'] td[data-k=cost_usd]").get_attribute("data-v")
        assert float(got) == pytest.approx(want, abs=1e-9) and want > 0
    budget = next(b for b in usage["budgets"] if b["tenant"] == "acme")
    remaining = page.locator(f"#budgets tr[data-budget='acme/{budget['budget']}'] td[data-k=remaining]")
    assert remaining.inner_text() == f"${budget['remaining']:,.6f}"
    shot(page, "cost")
    page.context.close()


def test_a_tenant_sees_its_own_spend_and_no_reports(console: Console, browser) -> None:
    usage = console.api("GET", "/v1/usage", key=console.h.keys["globex"]).json()
    page = sign_in(browser, console.url, console.h.keys["globex"])
    page.goto(console.url + "/ui/cost")
    assert [tr.get_attribute("data-tenant") for tr in page.locator("#by-tenant tbody tr").all()] == ["globex"]
    shown = float(page.locator("#cost-total").get_attribute("data-v"))
    assert shown == pytest.approx(usage["totals"]["cost_usd"], abs=1e-9)
    assert page.locator("#reports").count() == 0
    page.context.close()


def test_weekly_reports_are_listed_and_open(console: Console, browser) -> None:
    settings = console.h.app.state.settings
    service = ReportService(
        console.h.gateway.store.engine, settings.reports, settings.reports.directory(settings.data_dir)
    )
    written = service.write(service.build())
    page = sign_in(browser, console.url, ADMIN_KEY)
    page.goto(console.url + "/ui/cost")
    links = page.locator("#reports tbody a")
    assert links.count() == len(written) >= 1
    href = links.first.get_attribute("href")
    response = page.goto(console.url + href)
    assert response.status == 200 and "script-src" not in response.headers["content-security-policy"]
    assert page.goto(console.url + "/ui/reports/..%2Fl.db").status == 404
    page.context.close()
