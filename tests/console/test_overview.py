"""Sign-in and the overview, in Chromium: the numbers are those of GET /v1/usage and of the
SLO engine for the same traffic; pages render without JavaScript."""

from __future__ import annotations

import httpx
import pytest

from tests.console.conftest import ADMIN_KEY, PII_PROMPT, Console, shot, sign_in
from tests.servers import wait_until


@pytest.fixture(scope="module", autouse=True)
def traffic(console: Console) -> None:
    assert {r["status"] for r in console.chat("acme", n=12)} == {200}
    assert {r["status"] for r in console.chat("globex", PII_PROMPT, n=3)} == {200}
    # The SLO job (every second here) has seen this traffic: the states stay put from now on.
    wait_until(
        lambda: (console.api("GET", "/v1/slos/inferwatch-availability").json().get("total") or 0) >= 15,
        "the SLO job to see the traffic",
    )


def cells(page, table: str, row: str) -> dict[str, str]:
    """The data-k cells of the row whose first cell is `row`."""
    tr = page.locator(f"#{table} tbody tr", has=page.locator(f"td:first-child:text-is('{row}')"))
    out = {}
    for td in tr.locator("td[data-k]").all():
        out[td.get_attribute("data-k")] = td.get_attribute("data-v") or td.inner_text()
    return out


def test_admin_overview_numbers_equal_the_usage_api(console: Console, browser) -> None:
    usage = console.api("GET", "/v1/usage").json()["totals"]
    page = sign_in(browser, console.url, ADMIN_KEY)
    day = cells(page, "traffic-day", "all")
    hour = cells(page, "traffic-hour", "all")
    assert int(day["requests"].replace(",", "")) == usage["requests"] == 15
    assert int(day["prompt_tokens"].replace(",", "")) == usage["prompt_tokens"]
    assert int(day["completion_tokens"].replace(",", "")) == usage["completion_tokens"]
    assert float(day["cost_usd"]) == pytest.approx(usage["cost_usd"], abs=1e-9) and usage["cost_usd"] > 0
    assert hour["requests"] == day["requests"]
    assert page.locator("#upstreams tbody tr").count() == 2
    shot(page, "overview")
    page.context.close()


def test_alerts_are_the_slo_engines(console: Console, browser) -> None:
    firing = [
        s
        for s in console.api("GET", "/v1/slos").json()["data"]
        if s["alerts"]["page"]["firing"] or s["alerts"]["ticket"]["firing"] or s["alerts"]["no_data"]["firing"]
    ]
    page = sign_in(browser, console.url, ADMIN_KEY)
    items = page.locator("#alerts li")
    assert items.count() == len(firing)
    assert sorted(items.locator("a").all_inner_texts()) == sorted(s["id"] for s in firing)
    page.context.close()


def test_a_tenant_sees_its_own_traffic_only(console: Console, browser) -> None:
    usage = console.api("GET", "/v1/usage", key=console.h.keys["globex"]).json()["totals"]
    page = sign_in(browser, console.url, console.h.keys["globex"])
    assert int(cells(page, "traffic-day", "all")["requests"]) == usage["requests"] == 3
    assert page.locator("#upstreams").count() == 0
    assert "Canary" not in page.locator("nav").inner_text()
    page.context.close()


def test_pages_that_only_show_data_render_without_javascript(console: Console, browser) -> None:
    page = sign_in(browser, console.url, ADMIN_KEY, java_script_enabled=False)
    assert page.locator("#traffic-day tbody tr").count() >= 2
    page.context.close()


def test_bad_key_and_missing_session(console: Console, browser) -> None:
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(console.url + "/ui")
    assert page.url.endswith("/ui/login")  # no session: to the sign-in form
    page.fill("input[name=key]", "sk-not-a-real-key")
    page.click("button[type=submit]")
    assert "not valid" in page.locator("#login-error").inner_text()
    ctx.close()


def test_security_headers_and_cookie(console: Console) -> None:
    with httpx.Client(base_url=console.url) as c:
        r = c.get("/ui/login")
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        r = c.post("/ui/login", data={"key": ADMIN_KEY, "csrf": c.cookies["iw_login"]})
        assert r.status_code == 303
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert ADMIN_KEY not in r.headers["location"]
