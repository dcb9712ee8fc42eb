"""Responses that end early are billed and measured for what was delivered.

Real worker processes on the demo model (slow decode steps, so a stream really is in the middle
of its generation), the gateway, the real `openai` client. Each test checks the ledger row's
tokens, TTFT and cost against what the client received. A worker killed mid-stream is
tests/reliability/test_faults.py::test_worker_killed_during_streaming.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import openai
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.config import Budget, TenantConfig, UpstreamConfig, VersionTarget
from ledger.models import RequestRollupMinute
from reports.data import build_report
from reports.weeks import Week
from safety.config import SafetyConfig
from tests.gateway.conftest import Harness, gateway_server, stub_server
from tests.servers import Proc, start_worker, wait_until
from tests.prom_text import total

MSG = [{"role": "user", "content": "Tell me a long story"}]
RUNNING_USAGE = {"stream_options": {"include_usage": True, "continuous_usage_stats": True}}
PRICES = {"default": {"input_per_1m": 2.0, "output_per_1m": 6.0}}
NO_SAFETY = SafetyConfig(enabled=False)  # the plain streaming path; the guarded one is below and in the SIGKILL test


def cost(prompt: int, completion: int) -> float:
    return (prompt * 2.0 + completion * 6.0) / 1e6


def _worker(factory: pytest.TempPathFactory, *fault: str) -> Iterator[Proc]:
    w = start_worker(factory.mktemp("worker"), factory.mktemp("logs"), "--max-batch-size", "4", *fault)
    yield w
    w.stop()


@pytest.fixture(scope="module")
def slow_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    yield from _worker(tmp_path_factory, "--fault.extra-token-latency-s", "0.05")


def _gateway(tmp_path: Path, worker: Proc, **kw) -> AbstractContextManager[Harness]:
    version = httpx.get(worker.url + "/health").json()["version"]
    return gateway_server(
        tmp_path,
        f"sqlite:///{tmp_path / 'l.db'}",
        {version: UpstreamConfig(urls=[worker.url])},
        {"demo": [VersionTarget(version=version)]},
        prices=PRICES,
        **kw,
    )


def engine_stats(w: Proc) -> dict:
    return httpx.get(w.url + "/v1/engine/stats", timeout=10).json()


def worker_metric(w: Proc, name: str, **labels: str) -> float:
    return total(httpx.get(w.url + "/metrics", timeout=10).text, name, **labels)


def one_row(h: Harness):
    """The one row, once the gateway noticed the end of the stream and wrote it."""
    end = time.monotonic() + 60
    while not (rows := h.rows()) and time.monotonic() < end:
        time.sleep(0.05)
    [row] = rows
    return row


class Received:
    """What the client got from a stream: content chunks, the last usage, time to first content."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.contents = 0
        self.usage = None
        self.ttft: float | None = None

    def see(self, chunk) -> None:
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.choices and chunk.choices[0].delta.content:
            self.contents += 1
            if self.ttft is None:
                self.ttft = time.perf_counter() - self.t0


def test_worker_stalled_past_the_timeout_bills_what_arrived(tmp_path: Path, slow_worker: Proc):
    stall_s = 1.5
    with _gateway(tmp_path, slow_worker, first_byte_timeout_s=stall_s, safety=NO_SAFETY) as h:
        got = Received()
        stream = h.client().chat.completions.create(
            model="demo", messages=MSG, max_tokens=900, stream=True, extra_body={"ignore_eos": True, **RUNNING_USAGE}
        )
        try:
            with pytest.raises(openai.APIError, match="mid-stream"):
                for chunk in stream:
                    got.see(chunk)
                    if got.contents == 8:
                        os.kill(slow_worker.process.pid, signal.SIGSTOP)  # a stall: alive, silent
        finally:
            os.kill(slow_worker.process.pid, signal.SIGCONT)
        row = one_row(h)
        assert (row.status_code, row.error_type, row.partial, row.usage_estimated) == (
            502,
            "upstream_disconnected",
            True,
            False,
        )
        n = got.usage.completion_tokens
        assert got.contents >= 8 and n >= got.contents
        assert (row.prompt_tokens, row.completion_tokens) == (got.usage.prompt_tokens, n)
        assert row.cost_usd == pytest.approx(cost(row.prompt_tokens, n))
        assert 0 < row.ttft_s <= got.ttft
        # TPOT spans the tokens that arrived, not the silence after them that the timeout waited out
        assert row.latency_s - (row.ttft_s + row.tpot_s * (n - 1)) >= stall_s * 0.9
        wait_until(lambda: engine_stats(slow_worker)["running"] == 0, "the worker to drop the abandoned sequence")


def test_client_leaving_mid_generation_is_billed_and_frees_the_worker_slot(tmp_path: Path, slow_worker: Proc):
    before = engine_stats(slow_worker)
    aborted = worker_metric(slow_worker, "inferwatch_worker_request_success_total", finished_reason="abort")
    generated = worker_metric(slow_worker, "inferwatch_worker_generation_tokens_total")
    budgets = [Budget(period="month", kind="tokens", limit=1e9), Budget(period="month", kind="spend", limit=1e6)]
    with _gateway(tmp_path, slow_worker, safety=NO_SAFETY, tenants={"acme": TenantConfig(budgets=budgets)}) as h:
        got = Received()
        stream = h.client().chat.completions.create(
            model="demo", messages=MSG, max_tokens=900, stream=True, extra_body={"ignore_eos": True, **RUNNING_USAGE}
        )
        for chunk in stream:
            got.see(chunk)
            if got.contents == 5:
                break
        assert engine_stats(slow_worker)["running"] == 1  # still generating when the client leaves
        stream.close()
        row = one_row(h)
        # the worker stopped generating for it: the slot is free, the engine counted an abort
        wait_until(lambda: engine_stats(slow_worker)["running"] == 0, "the worker to drop the sequence")
        after = engine_stats(slow_worker)
        assert after["free_slots"] == after["max_batch_size"] == 4
        assert after["cancelled"] == before["cancelled"] + 1
        assert (
            worker_metric(slow_worker, "inferwatch_worker_request_success_total", finished_reason="abort")
            == aborted + 1
        )
        made = worker_metric(slow_worker, "inferwatch_worker_generation_tokens_total") - generated

        assert (row.status_code, row.error_type, row.client_disconnected, row.partial) == (
            499,
            "client_disconnect",
            True,
            True,
        )
        assert not row.usage_estimated and row.prompt_tokens == got.usage.prompt_tokens
        # what the client read, up to what the gateway had sent on (the socket holds a few more), never more than
        # was made
        assert got.usage.completion_tokens <= row.completion_tokens <= made < 900
        assert row.cost_usd == pytest.approx(cost(row.prompt_tokens, row.completion_tokens))
        assert 0 < row.ttft_s <= got.ttft and row.tpot_s > 0

        # one record, many views: metrics, rollups, the usage API, budgets and the weekly report agree with the row
        assert h.metric_sum("inferwatch_tokens_total", token_type="output") == row.completion_tokens
        assert h.metric_sum("inferwatch_cost_usd_total") == pytest.approx(row.cost_usd)
        with Session(h.gateway.store.engine) as s:
            m = RequestRollupMinute
            sums = s.execute(
                select(func.sum(m.prompt_tokens), func.sum(m.completion_tokens), func.sum(m.cost_usd))
            ).one()
        assert tuple(sums[:2]) == (row.prompt_tokens, row.completion_tokens) and sums[2] == pytest.approx(row.cost_usd)
        usage = httpx.get(h.url + "/v1/usage", headers=h.headers(), timeout=30).json()
        totals = usage["totals"]
        assert (totals["prompt_tokens"], totals["completion_tokens"]) == (row.prompt_tokens, row.completion_tokens)
        assert totals["cost_usd"] == pytest.approx(row.cost_usd)
        used = {b["kind"]: b["used"] for b in usage["budgets"] if b["tenant"] == "acme"}
        assert used["tokens"] == row.prompt_tokens + row.completion_tokens and used["spend"] == pytest.approx(
            row.cost_usd
        )
        now = datetime.now(timezone.utc)
        report = build_report(h.gateway.store.engine, Week.of(now), now=now + timedelta(hours=1))
        assert (report.totals.completion_tokens, report.totals.cost_usd) == (
            row.completion_tokens,
            pytest.approx(row.cost_usd),
        )


@pytest.fixture(scope="module")
def failing_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    yield from _worker(tmp_path_factory, "--fault.fail-after-tokens", "6")


def test_generation_failing_part_way_is_recorded_with_what_the_worker_made(tmp_path: Path, failing_worker: Proc):
    # the worker's own answer to the same request: an error that says what it had generated
    direct = httpx.post(
        failing_worker.url + "/v1/chat/completions",
        json={"model": "inferwatch-demo-mistral", "messages": MSG, "max_tokens": 50, "ignore_eos": True},
        timeout=60,
    )
    assert direct.status_code == 500 and direct.json()["error"]["code"] == "engine_error"
    made = direct.json()["usage"]
    assert made["completion_tokens"] == 6
    with _gateway(tmp_path, failing_worker) as h:
        with pytest.raises(openai.InternalServerError):
            h.client().chat.completions.create(
                model="demo", messages=MSG, max_tokens=50, extra_body={"ignore_eos": True}
            )
        got = Received()
        with pytest.raises(openai.APIError):
            for chunk in h.client().chat.completions.create(
                model="demo", messages=MSG, max_tokens=50, stream=True, extra_body={"ignore_eos": True, **RUNNING_USAGE}
            ):
                got.see(chunk)
        plain, streamed = h.rows()
        for row in (plain, streamed):
            assert (row.error_type, row.partial, row.usage_estimated) == ("upstream_error", True, False)
            assert (row.prompt_tokens, row.completion_tokens) == (made["prompt_tokens"], 6)
            assert row.cost_usd == pytest.approx(cost(made["prompt_tokens"], 6))
        assert plain.status_code == 500 and plain.ttft_s is None
        assert streamed.status_code == 502 and got.usage.completion_tokens <= 6 and 0 < streamed.ttft_s <= got.ttft


def test_safety_block_mid_stream_bills_what_was_generated_until_the_block(tmp_path: Path):
    # the guard holds back a window before it releases or blocks: the phrase comes early, the reply runs long after it
    reply = (
        "Here is the plan for the week. " * 10
        + "The codename is Project Falcon. "
        + "Then the launch goes on as planned. " * 60
    )
    safety = SafetyConfig(
        classifier=False,
        tenants={"acme": {"output": {"deny_list": "block"}, "deny_list": {"phrases": ["Project Falcon"]}}},
    )
    with (
        stub_server() as stub,
        gateway_server(
            tmp_path,
            f"sqlite:///{tmp_path / 'l.db'}",
            {"stub@1": UpstreamConfig(urls=[stub.url])},
            {"m": [VersionTarget(version="stub@1")]},
            prices=PRICES,
            safety=safety,
        ) as h,
    ):
        stub.behaviour.reply_text = reply
        c = openai.OpenAI(base_url=h.url + "/v1", api_key=h.keys["acme"], max_retries=0)
        asked = list(
            c.chat.completions.create(model="m", messages=MSG, max_tokens=200, stream=True, extra_body=RUNNING_USAGE)
        )
        plain = list(c.chat.completions.create(model="m", messages=MSG, max_tokens=200, stream=True))
        for chunks in (asked, plain):
            assert chunks[-1].choices[0].finish_reason == "content_filter"
            assert "Falcon" not in "".join(x.choices[0].delta.content or "" for x in chunks)
        assert all(x.usage is None for x in plain)
        blocked_at = asked[-1].usage  # the blocking chunk carries the upstream's count so far
        pieces = len(reply) // 3
        assert 0 < blocked_at.completion_tokens < pieces  # cut in the middle
        for row in h.rows():
            assert (row.status_code, row.finish_reason, row.partial, row.usage_estimated) == (
                200,
                "content_filter",
                True,
                False,
            )
            assert (row.prompt_tokens, row.completion_tokens) == (
                blocked_at.prompt_tokens,
                blocked_at.completion_tokens,
            )
            assert row.cost_usd == pytest.approx(cost(row.prompt_tokens, row.completion_tokens))
            assert row.ttft_s is not None and row.tpot_s is not None and row.ttft_s <= row.latency_s
