"""Async output processing: step N+1 is launched before step N's tokens are read. A request gets
exactly what the synchronous engine gives it (tokens, streamed text, finish reason, usage), the
overshoot token of a finished request never reaches it, and the metrics are the same."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from inference.demo_model import ensure_demo_model
from inference.engine import Engine, SamplingParams
from inference.metrics import WorkerMetrics
from inference.model_loader import load_model


@dataclass
class Result:
    ids: list[int]
    text: str
    finish: str | None
    usage: tuple[int, int]
    engine_ids: list[int]  # the engine's own list: tokens accepted after a cancel was sent show up here


def run(engine: Engine, tok, reqs: list[tuple[str, SamplingParams, float]], cancel_after: int = 5) -> list[Result]:
    async def one(i: int, prompt: str, params: SamplingParams, delay: float) -> Result:
        await asyncio.sleep(delay)
        h = engine.submit(f"r{i}", tok(prompt)["input_ids"], params, asyncio.get_running_loop())
        text, finish, usage = "", None, (0, 0)
        async for out in h.outputs():
            text, finish, usage = text + out.text, out.finish_reason, (out.prompt_tokens, out.completion_tokens)
            if params.max_tokens == 99 and usage[1] >= cancel_after:  # the request that is cancelled
                h.cancel()
                break
        assert h.seq is not None
        return Result(list(h.seq.output_ids), text, finish, usage, h.seq.output_ids)

    async def all_() -> list[Result]:
        return await asyncio.gather(*(one(i, *r) for i, r in enumerate(reqs)))

    return asyncio.run(all_())


def sample(metrics: WorkerMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value("inferwatch_worker_" + name, {"model_version": "t", **labels})
    assert value is not None, name
    return value


def test_async_output_gives_each_request_what_the_synchronous_engine_gives(tmp_path):
    loaded = load_model(ensure_demo_model(tmp_path), max_model_len=256)
    tok = loaded.tokenizer

    def engine(async_output: bool) -> Engine:
        e = Engine(
            loaded,
            max_batch_size=3,
            max_queue=16,
            prefill_token_budget=16,
            metrics=WorkerMetrics("t"),
            async_output=async_output,
        )
        e.start()
        return e

    greedy = SamplingParams(max_tokens=30, temperature=0.0, ignore_eos=True)
    sync = engine(False)
    try:
        probe = run(sync, tok, [("Hello", greedy, 0.0)])[0].text
    finally:
        sync.stop()
    stop = probe[12:14]  # a stop string the greedy "Hello" hits mid-stream
    reqs = [
        ("Hello", SamplingParams(max_tokens=30, temperature=0.0, stop=[stop], ignore_eos=True), 0.0),
        ("The quick brown fox", SamplingParams(max_tokens=9, temperature=0.0), 0.002),
        ("seeded", SamplingParams(max_tokens=20, temperature=1.0, top_p=0.9, seed=7), 0.004),
        ("a", SamplingParams(max_tokens=1, temperature=0.0, ignore_eos=True), 0.006),
        ("cancel me", SamplingParams(max_tokens=99, temperature=0.0, ignore_eos=True), 0.008),
        ("late", SamplingParams(max_tokens=12, temperature=0.7, seed=3), 0.012),
    ]
    results = {}
    for mode in (False, True):
        e = engine(mode)
        try:
            results[mode] = (run(e, tok, reqs), e)
        finally:
            e.stop()
    (want, sync), (got, asyn) = results[False], results[True]
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if reqs[i][1].max_tokens == 99:  # cancelled: as many tokens as arrived before the cancel took effect
            n = min(len(g.ids), len(w.ids))
            assert g.finish is None and 5 <= len(g.ids) < 99 and g.ids[:n] == w.ids[:n]
            continue
        assert (g.ids, g.text, g.finish, g.usage) == (w.ids, w.text, w.finish, w.usage), f"request {i}"
    assert got[0].finish == "stop" and stop not in got[0].text and len(got[0].ids) < 30
    assert got[1].usage[1] == len(got[1].ids) <= 9
    assert asyn.runner.launches > asyn.stats.steps  # steps ran ahead, their overshoot tokens were dropped
    assert sync.runner.launches == sync.stats.steps
    for e, res in ((sync, want), (asyn, got)):
        assert len(e._free_slots) == 3 and e.stats.cancelled == 1
        tokens = sum(len(r.engine_ids) for r in res)
        assert sample(e.metrics, "generation_tokens_total") == tokens  # no overshoot token counted
        assert sample(e.metrics, "batch_size_count") == e.stats.steps
        assert sample(e.metrics, "batch_size_sum") == tokens - len(reqs)  # every first token came from prefill
    for reason in ("stop", "length", "abort"):
        name = "request_success_total"
        assert sample(asyn.metrics, name, finished_reason=reason) == sample(sync.metrics, name, finished_reason=reason)


def test_a_failed_step_waits_for_the_step_in_flight_and_the_engine_goes_on(tmp_path):
    loaded = load_model(ensure_demo_model(tmp_path), max_model_len=256)
    e = Engine(
        loaded, max_batch_size=2, max_queue=8, prefill_token_budget=16, metrics=WorkerMetrics("t"), async_output=True
    )
    waited: list[int] = []
    wait, accept = e.runner.wait, e._accept
    e.runner.wait = lambda ticket: waited.append(ticket) or wait(ticket)  # type: ignore[method-assign]
    calls = 0

    def failing_accept(results):
        nonlocal calls
        calls += 1
        if calls == 4:  # a decode step's tokens, while the next step is in flight
            raise RuntimeError("injected")
        return accept(results)

    e._accept = failing_accept  # type: ignore[method-assign]
    e.start()
    try:
        params = SamplingParams(max_tokens=20, temperature=0.0, ignore_eos=True)
        failed = run(e, loaded.tokenizer, [("Hello", params, 0.0)])[0]
        assert failed.finish == "error" and len(failed.ids) < 20
        assert len(waited) == e.runner.launches  # every launched step waited on, the abandoned one too
        again = run(e, loaded.tokenizer, [("Hello", params, 0.0)])[0]
        assert again.finish == "length" and len(again.ids) == 20
        assert len(e._free_slots) == 2
    finally:
        e.stop()
