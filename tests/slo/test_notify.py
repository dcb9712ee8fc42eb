from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine

from alerts import rules
from alerts.config import AlertsConfig
from slo.conventions import NO_TRAFFIC_ALERT, PAGE_ALERT, TICKET_ALERT
from slo.notify import ALERTS, AlertNote, Webhook, WebhookNotifier, fingerprint, payload
from slo.notify import alert_labels as notify_labels
from slo.service import SLOService
from slo.status import SLOStatus

from tests.slo._support import T0, Receiver, outage, slos, write

AVAIL = """\
service: svc
slos:
  - {name: avail, objective: 99, sli: {availability: {}}, selector: {model_alias: demo}, labels: {team: core}}
"""
IDLE_TICKETS = AVAIL.replace("labels: {team: core}}", "labels: {team: core}, alerting: {no_traffic_after: 15m}}")


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def service(engine: Engine, url: str, spec: str = AVAIL) -> SLOService:
    return SLOService(engine, slos(spec), WebhookNotifier([url], timeout_s=5))


def test_one_notification_per_state_change_and_none_after_a_restart(ledger_engine: Engine, receiver: Receiver) -> None:
    # 50 healthy minutes, 10 minutes of 503s (12:50-13:00), 40 healthy minutes again
    write(ledger_engine, outage(recovery=40), slos(AVAIL))
    svc = service(ledger_engine, receiver.url)
    for m in (60, 61, 62):
        svc.run_once(at(m))
    assert sorted(receiver.summary()) == [("avail", PAGE_ALERT, "firing"), ("avail", TICKET_ALERT, "firing")]

    restarted = service(ledger_engine, receiver.url)  # a new process: state comes from the history
    restarted.run_once(at(63))
    assert len(receiver.payloads) == 2

    restarted.run_once(at(80))  # 30m still holds 13:00's errors: the 6x (6h and 30m) page row fires
    assert len(receiver.payloads) == 2
    for m in (90, 91):  # healthy 5m and 30m: the page resolves; the ticket (1d and 2h) stays
        restarted.run_once(at(m))
    assert receiver.summary()[2:] == [("avail", PAGE_ALERT, "resolved")]
    resolved = receiver.payloads[2]["alerts"][0]
    assert resolved["startsAt"] == "2025-01-06T13:00:00Z" and resolved["endsAt"] == "2025-01-06T13:30:00Z"

    restarted.run_once(at(115))  # no traffic for 15 minutes (from 13:40 on): an idle SLO opens no ticket
    assert receiver.attempts == len(receiver.payloads) == 3


def test_no_traffic_notifies_only_an_slo_that_opted_in(ledger_engine: Engine, receiver: Receiver) -> None:
    write(ledger_engine, outage(recovery=40), slos(IDLE_TICKETS))
    svc = service(ledger_engine, receiver.url, IDLE_TICKETS)
    for m in (60, 90, 114):
        svc.run_once(at(m))
    assert ("avail", NO_TRAFFIC_ALERT, "firing") not in receiver.summary()
    svc.run_once(at(115))  # traffic ended at 13:40: 15 minutes without events
    assert receiver.summary()[-1] == ("avail", NO_TRAFFIC_ALERT, "firing")
    alert = receiver.payloads[-1]["alerts"][0]
    assert alert["labels"]["severity"] == "ticket" and "sloth_severity" not in alert["labels"]


def test_failed_webhook_is_retried_on_the_next_evaluation(
    sqlite_engine: Engine, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    write(sqlite_engine, outage(), slos(AVAIL))
    receiver.failures = [500]
    svc = service(sqlite_engine, receiver.url)
    svc.run_once(at(60))
    assert receiver.payloads == [] and receiver.attempts == 1  # a failing webhook is not hammered
    assert "retrying on the next evaluation" in caplog.text
    assert svc.history("avail")[0].page  # the job went on

    svc.run_once(at(61))
    assert sorted(receiver.summary()) == [("avail", PAGE_ALERT, "firing"), ("avail", TICKET_ALERT, "firing")]
    svc.run_once(at(62))
    assert len(receiver.payloads) == 2


def test_pending_notifications_survive_a_restart(sqlite_engine: Engine, receiver: Receiver) -> None:
    write(sqlite_engine, outage(), slos(AVAIL))
    receiver.failures = [503]
    service(sqlite_engine, receiver.url).run_once(at(60))
    assert receiver.payloads == []
    service(sqlite_engine, receiver.url).run_once(at(61))  # restarted: still owes both
    assert sorted(receiver.summary()) == [("avail", PAGE_ALERT, "firing"), ("avail", TICKET_ALERT, "firing")]


def test_unreachable_webhook_never_raises(sqlite_engine: Engine) -> None:
    write(sqlite_engine, outage(), slos(AVAIL))
    notifier = WebhookNotifier(["http://127.0.0.1:1/nothing"], timeout_s=1)
    svc = SLOService(sqlite_engine, slos(AVAIL), notifier)
    assert svc.run_once(at(60))[0].page
    assert notifier.failed_total == 1 and notifier.state("svc-avail")["page"]["pending"]


def test_webhook_severities_route_alerts(sqlite_engine: Engine, receiver: Receiver) -> None:
    write(sqlite_engine, outage(), slos(AVAIL))
    svc = SLOService(sqlite_engine, slos(AVAIL), WebhookNotifier([Webhook(receiver.url, frozenset({"page"}))]))
    svc.run_once(at(60))
    assert receiver.summary() == [("avail", PAGE_ALERT, "firing")]


def test_payload_is_alertmanager_compatible(sqlite_engine: Engine) -> None:
    write(sqlite_engine, outage(), slos(AVAIL))
    st = SLOService(sqlite_engine, slos(AVAIL)).evaluate_all(at(60))[0]
    note = AlertNote(True, at(60), None, [])
    p = payload(st, "page", note, runbook_base_url="https://runbooks.example/rb")
    assert p["version"] == "4" and p["status"] == "firing" and p["truncatedAlerts"] == 0
    assert p["groupKey"] == '{}:{alertname="SLOErrorBudgetBurnPage", slo="avail"}'
    (alert,) = p["alerts"]
    assert alert["labels"] == {
        "alertname": PAGE_ALERT,
        "severity": "page",
        "sloth_severity": "page",
        "slo": "avail",
        "sloth_id": "svc-avail",
        "sloth_service": "svc",
        "sloth_slo": "avail",
        "model_alias": "demo",
        "team": "core",
    }
    assert set(alert["annotations"]) >= {"summary", "description", "runbook_url"}
    cfg = AlertsConfig(runbook_base_url="https://runbooks.example/rb")
    assert alert["annotations"]["runbook_url"] == cfg.runbook_url(PAGE_ALERT, "svc-avail")
    assert alert["startsAt"] == "2025-01-06T13:00:00Z" and alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert re.fullmatch(r"[0-9a-f]{16}", alert["fingerprint"])
    # the rule's alert carries the same labels (besides `slo`), so both can be silenced alike
    rule = rules.burn_alert(st.slo, "page", cfg)
    assert {k: v for k, v in alert["labels"].items() if k not in ("alertname", "slo")} == rule["labels"]


def test_alert_names_and_labels_match_the_prometheus_rules() -> None:
    slo = slos(IDLE_TICKETS)[0]
    for key in ("page", "ticket", "no_traffic"):
        rule = {
            "page": rules.burn_alert(slo, "page", AlertsConfig()),
            "ticket": rules.burn_alert(slo, "ticket", AlertsConfig()),
            "no_traffic": rules.no_traffic_alert(slo, AlertsConfig()),
        }[key]
        ours = notify_labels(slo, key)
        assert ours.pop("alertname") == rule["alert"] and ours.pop("slo") == slo.name
        assert ours == rule["labels"]
    assert ALERTS == {"page": "page", "ticket": "ticket", "no_traffic": "ticket"}


def test_fingerprint_depends_on_labels_not_their_order() -> None:
    a = fingerprint({"alertname": "X", "slo": "a"})
    assert a == fingerprint({"slo": "a", "alertname": "X"})
    assert a != fingerprint({"alertname": "X", "slo": "b"})
    assert fingerprint({"a": "bc"}) != fingerprint({"ab": "c"})  # separators matter


def test_unsupported_and_failed_slos_send_nothing() -> None:
    notifier = WebhookNotifier(["http://127.0.0.1:1/never"])
    safety = [s for s in slos() if s.name == "safety"][0]
    avail = [s for s in slos() if s.name == "avail"][0]
    notifier.restore({avail.id: {"page": {"firing": True, "since": "2025-01-06T12:00:00Z", "pending": []}}})
    now = datetime(2025, 1, 6, 13, tzinfo=timezone.utc)
    notifier.notify([SLOStatus.unsupported(safety, now, "why"), SLOStatus.error(avail, now, "db down")], now)
    assert notifier.failed_total == 0 and notifier.sent_total == 0
    assert notifier.state(avail.id)["page"]["firing"]  # a failed evaluation does not resolve it
