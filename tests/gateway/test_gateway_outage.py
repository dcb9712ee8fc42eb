"""The ledger database goes away during traffic and comes back: no record is lost."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from gateway.config import UpstreamConfig, VersionTarget
from tests.gateway.conftest import gateway_server

pytestmark = pytest.mark.postgres


def test_database_outage_during_traffic_loses_no_record(tmp_path, stub, pg_server, pg_ledger_template):
    url = pg_server.create_database("gateway_outage", template=pg_ledger_template)
    ups = {"stub@1": UpstreamConfig(urls=[stub.url])}
    with gateway_server(
        tmp_path, url, ups, {"m": [VersionTarget(version="stub@1")]}, default_limits={"rpm": 100_000}
    ) as h:
        body = {"model": "m", "messages": [{"role": "user", "content": "count me"}], "max_tokens": 3}

        def burst(n: int) -> list[int]:
            with httpx.Client(timeout=30) as c, ThreadPoolExecutor(8) as pool:
                return list(
                    pool.map(
                        lambda _: c.post(h.url + "/v1/chat/completions", json=body, headers=h.headers()).status_code,
                        range(n),
                    )
                )

        before = burst(40)
        pg_server.stop()
        try:
            during = burst(60)  # the gateway keeps serving while the database is down
            deadline = time.monotonic() + 10
            while h.app.state.writer.stats().spool_files == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert h.app.state.writer.stats().spool_files > 0
            # a key never seen before cannot be checked without the database: 503, not a crash
            stranger = httpx.post(
                h.url + "/v1/chat/completions",
                json=body,
                headers={"authorization": "Bearer iw-0123456789ab-unknownsecret"},
            )
            assert stranger.status_code == 503 and stranger.json()["error"]["code"] == "auth_unavailable"
            assert h.metric("inferwatch_ledger_database_up") in (0.0, 1.0)
        finally:
            pg_server.start()
        after = burst(20)
        assert before + during + after == [200] * 120
        deadline = time.monotonic() + 60
        rows = h.rows()
        while len(rows) < 120 and time.monotonic() < deadline:
            time.sleep(0.5)
            rows = h.rows()
        assert len(rows) == 120
        assert len({r.request_id for r in rows}) == 120
        assert sum(r.completion_tokens for r in rows) == 3 * 120
        stats = h.app.state.writer.stats()
        assert stats.dropped_total == 0 and stats.spool_files == 0
