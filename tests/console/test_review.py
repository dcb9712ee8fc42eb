"""The review queue in Chromium: excerpts are redacted; claiming and resolving items changes
the measured precision the API reports; a tenant key is refused; a POST without the session's
CSRF token is refused."""

from __future__ import annotations

import httpx
import pytest

from tests.console.conftest import ADMIN_KEY, PII_PROMPT, Console, shot, sign_in

EMAIL = "bob.smith@example.com"


@pytest.fixture(scope="module", autouse=True)
def flagged(console: Console) -> None:
    assert {r["status"] for r in console.chat("globex", PII_PROMPT, n=3)} == {200}


def precision(console: Console) -> dict[str, float | None]:
    return {p["category"]: p["precision"] for p in console.api("GET", "/v1/admin/reviews/precision").json()["data"]}


def test_resolve_items_and_see_the_precision_change(console: Console, browser) -> None:
    page = sign_in(browser, console.url, ADMIN_KEY)
    page.click("nav >> text=Safety review")
    rows = page.locator("#queue tbody tr[data-item]")
    assert rows.count() == 3
    assert EMAIL not in page.locator("#queue").inner_text()  # the excerpt is redacted
    category = rows.first.locator("td").nth(5).inner_text()
    shot(page, "review")

    first = rows.first.get_attribute("data-item")
    rows.first.locator("button[name=claim]").click()
    page.wait_for_url("**/ui/review?status=claimed")
    page.locator(f"#queue tr[data-item='{first}'] button[value=true_positive]").click()
    page.wait_for_url("**/ui/review?status=resolved")
    assert page.locator(f"#precision tr[data-category='{category}'] td[data-k=precision]").inner_text() == "100.0 %"
    assert precision(console)[category] == 1.0

    page.goto(console.url + "/ui/review?status=open")
    second = page.locator("#queue tbody tr[data-item]").first
    second.locator("input[name=note]").fill("an example address in a template")
    second.locator("button[value=false_positive]").click()
    page.wait_for_url("**/ui/review?status=resolved")
    assert page.locator(f"#precision tr[data-category='{category}'] td[data-k=precision]").inner_text() == "50.0 %"
    assert precision(console)[category] == 0.5
    page.context.close()


def test_a_tenant_key_is_refused_the_admin_pages(console: Console, browser) -> None:
    page = sign_in(browser, console.url, console.h.keys["globex"])
    for path in ("/ui/review", "/ui/canary", "/ui/models"):
        response = page.goto(console.url + path)
        assert response.status == 403, path
        assert "admin key" in page.locator("#error-message").inner_text()
    page.context.close()


def test_posts_without_the_csrf_token_are_refused(console: Console) -> None:
    with httpx.Client(base_url=console.url) as c:
        c.get("/ui/login")
        assert c.post("/ui/login", data={"key": ADMIN_KEY, "csrf": c.cookies["iw_login"]}).status_code == 303
        assert c.post("/ui/login", data={"key": ADMIN_KEY}).status_code == 403  # the login form's token too
        item = console.api("GET", "/v1/admin/reviews?status=open").json()["data"][0]["id"]
        for data in ({"note": "no token"}, {"csrf": "forged"}):
            r = c.post(f"/ui/review/{item}/claim", data=data)
            assert r.status_code == 403 and "CSRF" in r.text and "Traceback" not in r.text
        assert console.api("GET", "/v1/admin/reviews?status=open").json()["data"][0]["id"] == item  # not claimed
        r = c.post(f"/ui/review/{item}/claim", content=b"{}", headers={"content-type": "application/json"})
        assert r.status_code == 400
