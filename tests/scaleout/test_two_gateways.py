"""Two real gateway processes share one PostgreSQL ledger under load: no lost or duplicated
row, and both route with the same weights (a change through one's admin API reaches the other)."""

from __future__ import annotations

import collections
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from ledger.models import Request as RequestRow
from tests.gateway.conftest import ADMIN_KEY, stub_server
from tests.reliability._procs import create_key, start_gateway
from tests.reliability._traffic import call
from tests.prom_text import total as prom_total

pytestmark = pytest.mark.postgres


def test_two_gateways_share_one_postgres_ledger(tmp_path, pg_server, pg_ledger_template):
    url = pg_server.create_database("scaleout_two", template=pg_ledger_template)
    with stub_server("v-a") as a, stub_server("v-b") as b:
        settings = {
            "database_url": url,
            "admin_key": ADMIN_KEY,
            "gateway": {
                "upstreams": {"v-a": {"urls": [a.url]}, "v-b": {"urls": [b.url]}},
                "aliases": {"m": [{"version": "v-a", "weight": 3}, {"version": "v-b", "weight": 1}]},
                "default_limits": {"rpm": None, "tpm": None},
                "state_refresh_s": 0.5,
            },
        }
        gw1, config = start_gateway(tmp_path, {**settings, "data_dir": str(tmp_path / "one")}, "one")
        try:
            gw2, _ = start_gateway(tmp_path, {**settings, "data_dir": str(tmp_path / "two")}, "two")
        except BaseException:
            gw1.stop()
            raise
        try:
            key = create_key(config, "acme")  # made once, in the shared database: both gateways accept it
            headers = {"authorization": f"Bearer {key}"}
            kinds = ("chat", "stream", "embeddings", "chat")

            def burst(n: int) -> list:
                with httpx.Client(timeout=60) as c, ThreadPoolExecutor(16) as pool:
                    return list(pool.map(lambda i: call(c, (gw1, gw2)[i % 2].url, headers, kinds[i % 4]), range(n)))

            outcomes = burst(600)
            assert [o.status for o in outcomes] == [200] * 600
            assert all(o.done for o in outcomes if o.kind == "stream")

            # a weight change through one gateway's admin API reaches the other within its state refresh
            admin = {"authorization": f"Bearer {ADMIN_KEY}"}
            r = httpx.put(
                gw1.url + "/v1/admin/aliases/m", json={"targets": [{"version": "v-b", "weight": 1}]}, headers=admin
            )
            assert r.status_code == 200, r.text
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                cards = {
                    gw.url: httpx.get(gw.url + "/v1/models", headers=headers).json()["data"][0]["versions"]
                    for gw in (gw1, gw2)
                }
                if all([v["version"] for v in vs if v["weight"] > 0] == ["v-b"] for vs in cards.values()):
                    break
                time.sleep(0.2)
            after = burst(100)
            versions = {
                gw.url: {
                    httpx.post(
                        gw.url + "/v1/chat/completions",
                        json={"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 1},
                        headers=headers,
                    ).headers["x-model-version"]
                    for _ in range(20)
                }
                for gw in (gw1, gw2)
            }
            assert versions == {gw1.url: {"v-b"}, gw2.url: {"v-b"}}
            assert [o.status for o in after] == [200] * 100
            metrics = [httpx.get(gw.url + "/metrics").text for gw in (gw1, gw2)]
        finally:
            codes = [gw.stop() for gw in (gw1, gw2)]  # SIGTERM: each flushes its queue before it exits
        sent = [o.request_id for o in outcomes + after] + [None] * 40  # the 40 version probes
        engine = create_engine(url)
        try:
            with engine.connect() as c:
                total = c.execute(select(func.count()).select_from(RequestRow)).scalar_one()
                distinct = c.execute(select(func.count(func.distinct(RequestRow.request_id)))).scalar_one()
                ids = set(c.execute(select(RequestRow.request_id)).scalars())
                versions_before = collections.Counter(
                    c.execute(
                        select(RequestRow.model_version).where(
                            RequestRow.request_id.in_([o.request_id for o in outcomes])
                        )
                    ).scalars()
                )
        finally:
            engine.dispose()
        assert total == distinct == len(sent) == 740  # one row per request, none twice
        assert {o.request_id for o in outcomes + after} <= ids
        # both routed 3:1 before the change (0.75 expected; bounds > 4 sigma wide)
        assert 0.66 < versions_before["v-a"] / 600 < 0.84
        for text in metrics:
            served = prom_total(text, "inferwatch_requests_total")
            assert 300 <= served <= 440  # each gateway served its half (plus its probes)
        assert all(c in (0, -15) for c in codes)
