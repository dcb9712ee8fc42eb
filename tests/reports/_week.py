"""A ledger holding a known synthetic week (2026-W47) and the four weeks before it.

Spend per tenant and day (two successful requests a day, each half of it; 100 prompt and 50
completion tokens each):

- acme (alias chat): Mon..Sun 10, 11, 12, 10, 11, 12, 10 every week (76 a week); in W47
  Wednesday is 40 instead of 12 (104), plus one 503 that costs nothing. In W47 its second
  request each day goes to chat@v2, the others to chat@v1.
- globex (alias embed, embed@v1): 2.0, 2.2, 2.4, 2.0, 2.2, 2.4, 2.0 every week (15.2).
- initech (chat@v1): 0.5 a day before W47, nothing in W47.
- hooli: a registered tenant that never sent anything.

W47 also has safety hits (acme Wednesday: an input PII redaction and an output `harmful`
block; globex Tuesday: an input `injection` flag), SLO history rows, two canary analyses (one of
W46) and a rollout.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert

from ledger.buckets import DEFAULT_BUCKETS
from ledger.db import create_engine_for, migrate
from ledger.models import CanaryAnalysisRow, CanaryRolloutEvent, CanaryRolloutRow, SLOStatusRow, Tenant
from ledger.record import RequestRecord, SafetyHit
from ledger.store import write_records
from ledger.testing import make_record
from reports.weeks import Week
from slo.spec import parse_specs

WEEK = Week(2026, 47)
MON = WEEK.start  # 2026-11-16
ACME = [10.0, 11.0, 12.0, 10.0, 11.0, 12.0, 10.0]
GLOBEX = [2.0, 2.2, 2.4, 2.0, 2.2, 2.4, 2.0]
INITECH = 0.5
ACME_SPIKE = 40.0  # W47 Wednesday
TENANTS = ("acme", "globex", "hooli", "initech")

SPECS = """\
service: gw
defaults: {window: 28d}
slos:
  - {name: avail, objective: 99, sli: {availability: {}}}
  - {name: ttft, objective: 95, sli: {latency: {metric: ttft, threshold: 0.5}}}
  - {name: spend, sli: {cost: {budget_usd_per_1k_requests: 5000}}}
"""
SLOS = parse_specs(SPECS, "reports-test.yaml")

# W47 totals, by hand
THIS_ACME = sum(ACME) - ACME[2] + ACME_SPIKE  # 104
THIS_GLOBEX = sum(GLOBEX)  # 15.2
THIS_TOTAL = THIS_ACME + THIS_GLOBEX  # 119.2
PREV_TOTAL = sum(ACME) + sum(GLOBEX) + 7 * INITECH  # 94.7
THIS_REQUESTS = 14 + 1 + 14  # acme (with the 503), globex
PREV_REQUESTS = 14 * 3

_n = iter(range(10**9))


def _pair(
    tenant: str,
    alias: str,
    day: datetime,
    spend: float,
    versions: tuple[str, str],
    hits: tuple[list[SafetyHit], list[SafetyHit]] = ([], []),
) -> list[RequestRecord]:
    return [
        make_record(
            request_id=f"rq{next(_n)}",
            tenant=tenant,
            key_id=f"iw-{tenant}",
            alias=alias,
            model_version=versions[i],
            started_at=day + timedelta(hours=9 + 4 * i, minutes=13),
            cost_usd=spend / 2,
            prompt_tokens=100,
            completion_tokens=50,
            safety=hits[i],
        )
        for i in range(2)
    ]


def records(weeks_before: int = 4, *, this_week: bool = True) -> list[RequestRecord]:
    out: list[RequestRecord] = []
    for w in range(weeks_before, 0, -1):
        for d in range(7):
            day = MON - timedelta(weeks=w) + timedelta(days=d)
            out += _pair("acme", "chat", day, ACME[d], ("chat@v1", "chat@v1"))
            out += _pair("globex", "embed", day, GLOBEX[d], ("embed@v1", "embed@v1"))
            out += _pair("initech", "chat", day, INITECH, ("chat@v1", "chat@v1"))
    if not this_week:
        return out
    for d in range(7):
        day = MON + timedelta(days=d)
        acme_hits: tuple[list[SafetyHit], list[SafetyHit]] = ([], [])
        globex_hits: tuple[list[SafetyHit], list[SafetyHit]] = ([], [])
        if d == 2:
            acme_hits = (
                [SafetyHit("input", "pii", "regex", "redact", 0.99, "mail me at [REDACTED:EMAIL_ADDRESS]")],
                [SafetyHit("output", "harmful", "classifier", "block", 0.95, "[REDACTED:harmful]")],
            )
        if d == 1:
            globex_hits = ([SafetyHit("input", "injection", "classifier", "flag", 0.7, "ignore previous [...]")], [])
        out += _pair("acme", "chat", day, ACME_SPIKE if d == 2 else ACME[d], ("chat@v1", "chat@v2"), acme_hits)
        out += _pair("globex", "embed", day, GLOBEX[d], ("embed@v1", "embed@v1"), globex_hits)
    out.append(
        make_record(
            request_id=f"rq{next(_n)}",
            tenant="acme",
            alias="chat",
            model_version="chat@v1",
            started_at=MON + timedelta(days=2, hours=15),
            status_code=503,
            error_type="upstream_error",
            ttft_s=None,
            tpot_s=None,
            cost_usd=0.0,
            prompt_tokens=100,
            completion_tokens=0,
        )
    )
    return out


def fill(engine: Engine, recs: list[RequestRecord] | None = None, *, extras: bool = True) -> None:
    """The records (default: the full synthetic ledger), the tenants and, with `extras`, the
    SLO history, canary analyses and a rollout."""
    with engine.begin() as conn:
        conn.execute(insert(Tenant), [{"id": t, "name": t.title(), "settings": {}} for t in TENANTS])
        write_records(conn, records() if recs is None else recs, DEFAULT_BUCKETS)
        if extras:
            conn.execute(insert(SLOStatusRow), slo_history())
            conn.execute(insert(CanaryAnalysisRow), analyses())
            conn.execute(insert(CanaryRolloutRow), [rollout()])
            conn.execute(
                insert(CanaryRolloutEvent),
                [
                    {"rollout_id": "ro_1", "at": MON + timedelta(days=3, hours=10), "kind": "started", "detail": {}},
                    {
                        "rollout_id": "ro_1",
                        "at": MON + timedelta(days=3, hours=11),
                        "kind": "rolled_back",
                        "detail": {},
                    },
                ],
            )


def slo_history() -> list[dict]:
    """`gw/avail`: quiet before the week; pages Wed 10:00-11:00 (with a ticket) and from Sat 12:00 on."""

    def row(at: datetime, page: bool, ticket: bool = False) -> dict:
        return {
            "service": "gw",
            "slo": "avail",
            "evaluated_at": at,
            "status": "page" if page else "ok",
            "page": page,
            "ticket": ticket,
            "no_data": False,
            "burn_rates": {},
        }

    wed, sat = MON + timedelta(days=2), MON + timedelta(days=5)
    return [
        row(MON - timedelta(hours=1), False),
        row(MON + timedelta(minutes=5), False),
        row(wed + timedelta(hours=10), True, True),
        row(wed + timedelta(hours=10, minutes=30), True, True),
        row(wed + timedelta(hours=11), False),
        row(sat + timedelta(hours=12), True),
        row(sat + timedelta(hours=13), True),
    ]


def analyses() -> list[dict]:
    def row(id_: str, at: datetime, verdict: str, reason: str) -> dict:
        return {
            "id": id_,
            "alias": "chat",
            "baseline": "chat@v1",
            "canary": "chat@v2",
            "profile": {"name": "default-llm"},
            "mode": "fixed",
            "window_start": at - timedelta(hours=1),
            "window_end": at,
            "cursor": at,
            "status": "done",
            "verdict": verdict,
            "result": {"verdict": verdict, "reason": reason},
            "created_at": at,
            "updated_at": at,
        }

    return [
        row("ca_prev", MON - timedelta(days=2), "pass", "no regression"),
        row("ca_1", MON + timedelta(days=1, hours=8), "fail", "latency_s regressed by 60%"),
    ]


def rollout() -> dict:
    at = MON + timedelta(days=3, hours=10)
    return {
        "id": "ro_1",
        "alias": "chat",
        "baseline": "chat@v1",
        "canary": "chat@v2",
        "profile": {"name": "default-llm"},
        "steps": [5, 25, 50, 100],
        "current_step": 0,
        "step_started_at": at,
        "min_step_s": 300,
        "min_step_samples": 200,
        "max_step_s": 3600,
        "state": "rolled_back",
        "created_at": at,
        "updated_at": at,
    }


AFTER = WEEK.end + timedelta(hours=9)  # the Monday after, when the job runs


def data_dir_ledger(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """An empty, migrated SQLite ledger at `data_dir/ledger.db`, where the CLI looks for it, with
    no INFERWATCH_* variable left to point the CLI elsewhere."""
    for var in ("INFERWATCH_CONFIG", "INFERWATCH_DATABASE_URL", "INFERWATCH_DATA_DIR", "INFERWATCH_SLO_SPECS"):
        monkeypatch.delenv(var, raising=False)
    url = f"sqlite:///{(data_dir / 'ledger.db').resolve()}"
    migrate(url)
    return create_engine_for(url)
