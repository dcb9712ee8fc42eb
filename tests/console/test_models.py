"""Models and audit in Chromium: versions, alias history, the audit log with verify's result,
which turns red when an entry is edited behind the log's back."""

from __future__ import annotations

from sqlalchemy import update

from ledger.models import AuditEntry
from tests.console.conftest import ADMIN_KEY, Console, shot, sign_in


def test_versions_aliases_and_a_verified_audit_log(console: Console, browser) -> None:
    assert (
        console.api(
            "POST",
            "/v1/admin/models",
            json={"version": "v3", "digest": "sha256:" + "ab" * 32, "notes": "for the console test"},
        ).status_code
        == 201
    )
    targets = [{"version": "v1", "weight": 9}, {"version": "v2", "weight": 1}]
    assert console.api("PUT", "/v1/admin/aliases/chat", json={"targets": targets}).status_code == 200
    api = console.api("GET", "/v1/admin/audit/verify").json()
    page = sign_in(browser, console.url, ADMIN_KEY)
    page.click("nav >> text=Models & audit")
    assert page.locator("#versions tr[data-version='v3']").count() == 1
    assert "v1 9.0, v2 1.0" in page.locator("#alias-changes tbody tr").first.inner_text()
    assert api["ok"]
    assert page.locator("#verify").inner_text().startswith(f"The hash chain verifies: {api['entries']} entries")
    actions = page.locator("#audit tbody tr td:nth-child(4)").all_inner_texts()
    assert actions[-2:] == ["model.register", "alias.set"]  # the newest page, oldest first
    shot(page, "models")

    page.fill("input[name=action]", "alias.")
    page.click("form.filters button")
    assert set(page.locator("#audit tbody tr td:nth-child(4)").all_inner_texts()) == {"alias.set"}

    with console.h.gateway.store.engine.begin() as conn:  # an edit behind the log's back
        conn.execute(update(AuditEntry).where(AuditEntry.action == "alias.set").values(actor="mallory"))
    page.goto(console.url + "/ui/models")
    assert "broken" in page.locator("#verify").inner_text()
    assert not console.api("GET", "/v1/admin/audit/verify").json()["ok"]
    page.context.close()
