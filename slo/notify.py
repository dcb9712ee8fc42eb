"""Webhook notifications of SLO alert state changes, in Alertmanager's webhook format.

Alerts per SLO, named and labelled as the Prometheus rules name them (`alerts.rules`, from
`slo.conventions` and the SLO's `alerting`): SLOErrorBudgetBurnPage, SLOErrorBudgetBurnTicket
and, when the SLO opts in, SLONoTraffic (a ticket). SLOMetricAbsent is Prometheus' alone: the
ledger cannot tell a missing series from a quiet one, and an idle SLO must not open a ticket.
A notification goes out when an alert starts firing and when it resolves, not on every
evaluation. A webhook that fails keeps the change pending and is retried on the next
evaluation; nothing here raises into the caller. `state()` is what must survive a restart
(the service stores it in the history row and hands it back with `restore()`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import httpx

from slo import conventions as c
from slo.model import SLO, AlertKey
from slo.status import SLOStatus

log = logging.getLogger(__name__)

# state key -> which receivers (by Webhook.severities) get it
ALERTS: dict[AlertKey, str] = {"page": "page", "ticket": "ticket", "no_traffic": "ticket"}
ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt of a firing alert


@dataclass(frozen=True)
class Webhook:
    url: str
    severities: frozenset[str] = frozenset({"page", "ticket"})
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class AlertNote:
    """One alert of one SLO as last decided, and the webhooks still owed that decision."""

    firing: bool = False
    since: datetime | None = None  # when it started firing
    ended: datetime | None = None  # when it resolved
    pending: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "firing": self.firing,
            "since": _iso(self.since),
            "ended": _iso(self.ended),
            "pending": list(self.pending),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "AlertNote":
        return cls(bool(d.get("firing")), _parse(d.get("since")), _parse(d.get("ended")), list(d.get("pending") or []))


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _parse(s: str | None) -> datetime | None:
    return None if not s else datetime.fromisoformat(s.replace("Z", "+00:00"))


def fingerprint(labels: Mapping[str, str]) -> str:
    """Prometheus' label-set fingerprint (FNV-1a 64 over sorted names and values), as hex."""
    h = 0xCBF29CE484222325
    for name in sorted(labels):
        for part in (name, labels[name]):
            for b in part.encode() + b"\xff":
                h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def alert_labels(slo: SLO, key: AlertKey) -> dict[str, str]:
    """The labels of the Prometheus rule's alert, plus `slo` (the SLO's name)."""
    alert = slo.alerting.alert(key)
    labels = {
        "alertname": alert.name,
        c.SEVERITY_LABEL: alert.severity,
        "slo": slo.name,
        **c.id_labels(slo.service, slo.name),
        **slo.selector.single_values(),
        **slo.labels_dict,
        **alert.labels,
    }
    if key in ("page", "ticket"):
        labels[c.LABEL_SEVERITY] = key
    return labels


def _annotations(st: SLOStatus, key: AlertKey, runbook_base_url: str) -> dict[str, str]:
    slo = st.slo
    alert = slo.alerting.alert(key)
    if key == "no_traffic":
        summary = f"{slo.id}: no traffic for {slo.alerting.no_traffic_after_minutes}m"
        desc = (
            f"SLO {slo.id} has counted no events for {slo.alerting.no_traffic_after_minutes} minutes; "
            "its burn-rate alerts cannot fire."
        )
    else:
        summary = f"{slo.id}: error budget burn rate too high ({key})"
        rates = ", ".join(f"{w} {r:.3g}x" for w, r in st.burn_rates().items() if r is not None)
        left = st.budget_remaining
        desc = (
            f"SLO {slo.id} ({slo.sli.describe()}) burns its error budget too fast"
            + (f"; budget remaining {left:.1%}" if left is not None else "")
            + (f"; burn rates {rates}" if rates else "")
            + "."
        )
    return {
        "summary": summary,
        "description": desc,
        "slo": slo.id,
        "runbook_url": f"{runbook_base_url.rstrip('/')}/{alert.name}.md#{slo.id}",
        **alert.annotations,
    }


def payload(
    st: SLOStatus,
    key: AlertKey,
    note: AlertNote,
    *,
    receiver: str = "inferwatch",
    runbook_base_url: str = "runbooks",
    external_url: str = "",
) -> dict[str, Any]:
    """An Alertmanager webhook message (version 4) holding this one alert."""
    labels = alert_labels(st.slo, key)
    status = "firing" if note.firing else "resolved"
    annotations = _annotations(st, key, runbook_base_url)
    group = {"alertname": labels["alertname"], "slo": labels["slo"]}
    alert = {
        "status": status,
        "labels": labels,
        "annotations": annotations,
        "startsAt": _iso(note.since) or _iso(note.ended),
        "endsAt": ZERO_TIME if note.firing else _iso(note.ended),
        "generatorURL": external_url,
        "fingerprint": fingerprint(labels),
    }
    return {
        "version": "4",
        "status": status,
        "receiver": receiver,
        "groupKey": "{}:{" + ", ".join(f'{k}="{v}"' for k, v in group.items()) + "}",
        "truncatedAlerts": 0,
        "groupLabels": group,
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": external_url,
        "alerts": [alert],
    }


class WebhookNotifier:
    """Posts alert state changes to webhooks (`Webhook` or plain URLs, which get both severities)."""

    def __init__(
        self,
        webhooks: Sequence[Webhook | str],
        *,
        timeout_s: float = 5.0,
        runbook_base_url: str = "runbooks",
        external_url: str = "",
        receiver: str = "inferwatch",
        client: httpx.Client | None = None,
    ) -> None:
        self.webhooks = [w if isinstance(w, Webhook) else Webhook(w) for w in webhooks]
        self.runbook_base_url, self.external_url, self.receiver = runbook_base_url, external_url, receiver
        self._client = client or httpx.Client(timeout=timeout_s)
        self._notes: dict[str, dict[AlertKey, AlertNote]] = {}  # SLO id -> state key -> note
        self.sent_total = 0
        self.failed_total = 0

    def close(self) -> None:
        self._client.close()

    def state(self, slo_id: str) -> dict[str, Any] | None:
        notes = self._notes.get(slo_id)
        return {k: n.to_json() for k, n in notes.items()} if notes else None

    def restore(self, states: Mapping[str, Mapping[str, Any]]) -> None:
        """Take over the delivered states (by SLO id) recorded by a previous run or replica."""
        urls = {w.url for w in self.webhooks}
        for slo_id, notes in states.items():
            restored: dict[AlertKey, AlertNote] = {}
            for k, d in notes.items():
                if k in ALERTS and isinstance(d, Mapping):  # a state of an older version's alert is dropped
                    n = AlertNote.from_json(d)
                    n.pending = [u for u in n.pending if u in urls]
                    restored[k] = n
            self._notes[slo_id] = restored

    def notify(self, statuses: Iterable[SLOStatus], now: datetime | None = None) -> dict[str, dict[str, Any]]:
        """Record state changes and send what is pending; returns `state()` by SLO id."""
        at = now or datetime.now(timezone.utc)
        down: set[str] = set()  # webhooks that failed in this round are not tried again in it
        out: dict[str, dict[str, Any]] = {}
        for st in statuses:
            notes = self._notes.setdefault(st.slo.id, {})
            # An SLO that could not be evaluated (database down) keeps its alerts as they were.
            if st.evaluation is not None:
                firings: tuple[tuple[AlertKey, bool], ...] = (
                    ("page", st.page),
                    ("ticket", st.ticket),
                    ("no_traffic", st.no_traffic),
                )
                for key, firing in firings:
                    note = notes.get(key) or AlertNote()
                    if firing != note.firing:
                        severity = ALERTS[key]
                        note = AlertNote(
                            firing,
                            at if firing else note.since,
                            None if firing else at,
                            [w.url for w in self.webhooks if severity in w.severities],
                        )
                    notes[key] = note
            for key, note in notes.items():
                if note.pending:
                    self._send(st, key, note, down)
            state = self.state(st.slo.id)
            if state is not None:
                out[st.slo.id] = state
        return out

    def _send(self, st: SLOStatus, key: AlertKey, note: AlertNote, down: set[str]) -> None:
        body = payload(
            st,
            key,
            note,
            receiver=self.receiver,
            runbook_base_url=self.runbook_base_url,
            external_url=self.external_url,
        )
        for hook in self.webhooks:
            if hook.url not in note.pending or hook.url in down:
                continue
            try:
                resp = self._client.post(hook.url, json=body, headers=dict(hook.headers))
                ok, why = resp.is_success, f"HTTP {resp.status_code}"
            except Exception as e:  # noqa: BLE001 - a webhook must never break the job
                ok, why = False, f"{type(e).__name__}: {e}"
            if ok:
                note.pending.remove(hook.url)
                self.sent_total += 1
            else:
                down.add(hook.url)
                self.failed_total += 1
                log.warning(
                    "SLO notification %s %s for %s to %s failed (%s); retrying on the next evaluation",
                    body["alerts"][0]["labels"]["alertname"],
                    body["status"],
                    st.slo.id,
                    hook.url,
                    why,
                )
