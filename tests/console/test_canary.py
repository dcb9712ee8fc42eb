"""Canary pages in Chromium: abort a rollout and see the alias weights go back to the
baseline, audited as the API's abort is; roll an alias back; a tenant key is refused."""

from __future__ import annotations

from typing import Any

from tests.console.conftest import ADMIN_KEY, Console, shot, sign_in

PLAN = {
    "alias": "chat",
    "baseline": "v1",
    "canary": "v2",
    "steps": [25, 50],
    "min_step_s": 3600,
    "max_step_s": 7200,
    "metrics": [{"name": "latency_s", "direction": "increase"}],
}


def api_weights(console: Console) -> dict[str, float]:
    return {t["version"]: t["weight"] for t in console.api("GET", "/v1/admin/aliases/chat").json()["targets"]}


def page_weights(page: Any) -> dict[str, float]:
    return {
        tr.get_attribute("data-version"): float(tr.locator("td[data-k=weight]").inner_text())
        for tr in page.locator("#weights-chat tbody tr").all()
    }


def test_abort_a_rollout_and_see_the_weights_change(console: Console, browser) -> None:
    r = console.api("POST", "/v1/canary/rollouts", json=PLAN)
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    console.chat("acme", n=6)
    page = sign_in(browser, console.url, ADMIN_KEY)
    page.click("nav >> text=Canary")
    shot(page, "canary")
    page.click(f"a:text-is('{rid}')")
    assert page_weights(page) == api_weights(console) == {"v1": 75.0, "v2": 25.0}
    assert "running" in page.locator("#rollout-state").inner_text()

    page.click("button[name=pause]")
    assert "paused" in page.locator("#rollout-state").inner_text()
    page.click("button[name=abort]")
    assert "aborted" in page.locator("#rollout-state").inner_text()
    assert page_weights(page) == api_weights(console) == {"v1": 100.0, "v2": 0.0}
    kinds = [tr.get_attribute("data-kind") for tr in page.locator("#events tbody tr").all()]
    assert kinds[:2] == ["aborted", "paused"]
    shot(page, "rollout")

    audit = console.api("GET", f"/v1/admin/audit?target={rid}").json()["data"]
    assert [(e["action"], e["actor"]) for e in audit][-2:] == [
        ("rollout.paused", "admin"),
        ("rollout.aborted", "admin"),
    ]
    page.goto(console.url + f"/ui/canary/rollouts/{rid}")
    page.click("button[name=abort]")  # twice: the service's own refusal, as a page
    assert "already aborted" in page.locator("#error-message").inner_text()
    page.context.close()


def test_roll_an_alias_back(console: Console, browser) -> None:
    before = api_weights(console)
    put = console.api("PUT", "/v1/admin/aliases/chat", json={"targets": [{"version": "v2", "weight": 1}]})
    assert put.status_code == 200
    page = sign_in(browser, console.url, ADMIN_KEY)
    page.goto(console.url + "/ui/canary")
    assert page_weights(page) == {"v2": 1.0}
    page.click("button[name=rollback]")
    page.wait_for_url("**/ui/canary")
    assert page_weights(page) == api_weights(console) == before
    last = console.api("GET", "/v1/admin/audit?action=alias.").json()["data"][-1]
    assert last["actor"] == "admin" and last["target"] == "chat"
    page.context.close()
