"""The request explorer in Chromium: find one request by id and see its version and trace id;
filters and keyset pages; a tenant sees its own requests only."""

from __future__ import annotations

import pytest

from tests.console.conftest import ADMIN_KEY, Console, shot, sign_in


@pytest.fixture(scope="module", autouse=True)
def traffic(console: Console) -> None:
    console.chat("acme", n=7)
    console.chat("globex", n=2)
    console.stubs["v1"].behaviour.fail_status = 500
    try:
        console.chat("acme", n=2)
    finally:
        console.stubs["v1"].behaviour.fail_status = None


def test_find_one_request_by_id(console: Console, browser) -> None:
    row = [r for r in console.h.rows() if r.tenant == "acme"][3]
    page = sign_in(browser, console.url, ADMIN_KEY)
    page.click("nav >> text=Requests")
    shot(page, "requests")
    page.fill("#find-id input[name=id]", row.request_id)
    page.click("#find-id button")
    assert page.locator("#request-id").inner_text() == row.request_id
    assert page.locator("#version").inner_text() == f"chat → {row.model_version}"
    assert row.trace_id and page.locator("#trace-id").inner_text() == row.trace_id
    shot(page, "request")
    page.context.close()


def test_filters_and_keyset_pages(console: Console, browser) -> None:
    rows = console.h.rows()
    page = sign_in(browser, console.url, ADMIN_KEY)
    page.goto(console.url + "/ui/requests")
    page.fill("#filters input[name=status]", "5xx")
    page.fill("#filters input[name=tenant]", "acme")
    page.click("#filters button")
    failed = {r.request_id for r in rows if r.status_code >= 500 and r.tenant == "acme"}
    shown = {tr.get_attribute("data-id") for tr in page.locator("#requests tbody tr").all()}
    assert shown == failed and len(failed) >= 2

    seen: list[str] = []
    page.goto(console.url + "/ui/requests?tenant=acme&limit=4")
    while True:
        seen += [tr.get_attribute("data-id") for tr in page.locator("#requests tbody tr").all()]
        if page.locator("#older").count() == 0:
            break
        page.click("#older")
    acme = sorted((r for r in rows if r.tenant == "acme"), key=lambda r: (r.started_at, r.request_id), reverse=True)
    assert seen == [r.request_id for r in acme]  # every row once, newest first, across pages
    page.context.close()


def test_a_tenant_sees_only_its_requests(console: Console, browser) -> None:
    rows = console.h.rows()
    other = next(r for r in rows if r.tenant == "acme")
    page = sign_in(browser, console.url, console.h.keys["globex"])
    page.goto(console.url + "/ui/requests")
    ids = {tr.get_attribute("data-id") for tr in page.locator("#requests tbody tr").all()}
    assert ids == {r.request_id for r in rows if r.tenant == "globex"}
    assert page.goto(console.url + f"/ui/requests/{other.request_id}").status == 404
    assert page.goto(console.url + "/ui/requests?tenant=acme").status == 403
    page.context.close()


def test_bad_filters_say_what_is_wrong(console: Console, browser) -> None:
    page = sign_in(browser, console.url, ADMIN_KEY)
    for query, words in (
        ("status=abc", "status"),
        ("start=yesterday", "start"),
        ("after=nonsense", "after"),
        ("safety_action=explode", "safety_action"),
    ):
        response = page.goto(console.url + "/ui/requests?" + query)
        assert response.status == 400 and words in page.locator("#error-message").inner_text(), query
    page.context.close()
