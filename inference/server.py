"""The worker's OpenAI-compatible HTTP API over the batching engine."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import random
import threading
import time
from typing import Any, AsyncIterator, cast

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import protocol as p
from .config import WorkerConfig
from .demo_model import ensure_demo_model, is_demo
from .engine import Engine, EngineError, RequestHandle, SamplingParams
from .metrics import WorkerMetrics
from .model_loader import LoadedModel, load_model

log = logging.getLogger("inferwatch.worker")
_DEADLINE_PASSED = f"The request's deadline ({p.TIMEOUT_HEADER}) passed; generation stopped."


class WorkerState:
    """What the routes need; filled in by the loader thread, so /health can answer meanwhile."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.loaded: LoadedModel | None = None
        self.engine: Engine | None = None
        self.metrics: WorkerMetrics | None = None
        self.load_error: str | None = None
        self.load_seconds: float | None = None
        self.ready = threading.Event()

    def load(self) -> None:
        cfg = self.config
        t0 = time.perf_counter()
        try:
            path = cfg.model or ensure_demo_model(cfg.data_dir)
            if is_demo(path):
                log.warning("serving the built-in demo model: random weights, its output is not meaningful text")
            loaded = load_model(
                path,
                alias=cfg.alias,
                device=cfg.device,
                dtype=cfg.dtype,
                device_map=cfg.device_map,
                max_model_len=cfg.max_model_len,
                fuse=cfg.fuse_projections,
            )
            metrics = WorkerMetrics(loaded.version.id)
            engine = Engine(
                loaded,
                max_batch_size=cfg.max_batch_size,
                max_queue=cfg.max_queue,
                prefill_token_budget=cfg.prefill_token_budget,
                metrics=metrics,
                step_delay_s=cfg.fault.extra_token_latency_s,
                fail_after_tokens=cfg.fault.fail_after_tokens,
                use_graphs=cfg.cuda_graphs,
                compile_layers=cfg.compile,
                async_output=cfg.async_output,
            )
            engine.start()
            _warm_up(engine, loaded)
        except Exception as exc:
            log.exception("model load failed")
            self.load_error = f"{type(exc).__name__}: {exc}"
            return
        self.load_seconds = time.perf_counter() - t0
        metrics.labels(metrics.load_time).set(self.load_seconds)
        metrics.info.labels(
            model_version=loaded.version.id,
            alias=loaded.version.alias,
            digest=loaded.version.digest,
            device=str(loaded.device),
        ).set(1)
        self.loaded, self.metrics, self.engine = loaded, metrics, engine
        self.ready.set()
        log.info(
            "ready: %s (%s) in %.1fs, context %d, batch %d",
            loaded.version.id,
            loaded.device,
            self.load_seconds,
            loaded.max_model_len,
            cfg.max_batch_size,
        )


def _warm_up(engine: Engine, loaded: LoadedModel) -> None:
    """Run prefill and decode once at full batch so allocations happen before /health is ready."""
    loop = asyncio.new_event_loop()
    try:

        async def one(i: int) -> None:
            h = engine.submit(
                f"warmup-{i}",
                [loaded.tokenizer.bos_token_id or 0] * 8,
                SamplingParams(max_tokens=4, temperature=1.0, top_p=0.9),
                asyncio.get_running_loop(),
            )
            async for _ in h.outputs():
                pass

        async def all_() -> None:
            await asyncio.gather(*(one(i) for i in range(min(engine.max_batch_size, 64))))

        loop.run_until_complete(all_())
    finally:
        loop.close()


def _error(
    status: int, message: str, code: str | None = None, param: str | None = None, retry_after: float | None = None
) -> JSONResponse:
    headers = {"Retry-After": str(int(max(1, retry_after)))} if retry_after else None
    return JSONResponse(p.error_body(status, message, code, param), status_code=status, headers=headers)


def create_app(config: WorkerConfig) -> FastAPI:
    state = WorkerState(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        threading.Thread(target=state.load, name="inferwatch-loader", daemon=True).start()
        yield
        if state.engine:  # graceful: uvicorn has stopped accepting; let what runs finish
            await asyncio.to_thread(state.engine.stop, True, 60)

    app = FastAPI(title="inferwatch worker", lifespan=lifespan)
    app.state.worker = state

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        return _error(
            400,
            f"Invalid request: {loc + ': ' if loc else ''}{first.get('msg', 'malformed body')}",
            "invalid_request",
            loc or None,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return _error(500, "Internal error in the worker.", "internal_error")

    def engine_or_503() -> Engine:
        if not state.ready.is_set():
            raise EngineError(
                503,
                "The model is still loading." if not state.load_error else f"Model failed to load: {state.load_error}",
                "model_not_ready",
                retry_after=5,
            )
        assert state.engine is not None
        return state.engine

    @app.exception_handler(EngineError)
    async def _engine_error(request: Request, exc: EngineError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.code, exc.param, exc.retry_after)

    def check_model(name: str) -> LoadedModel:
        loaded = state.loaded
        assert loaded is not None
        if name not in (loaded.version.alias, loaded.version.id):
            raise EngineError(
                404,
                f"The model '{name}' does not exist on this worker; it serves '{loaded.version.alias}'.",
                "model_not_found",
            )
        return loaded

    def headers(loaded: LoadedModel, request_id: str) -> dict[str, str]:
        return {"x-model-version": loaded.version.id, "x-request-id": request_id}

    @app.get("/health")
    async def health() -> JSONResponse:
        if state.ready.is_set():
            assert state.loaded and state.engine
            return JSONResponse(
                {
                    "status": "ready",
                    "model": state.loaded.version.alias,
                    "version": state.loaded.version.id,
                    "load_seconds": state.load_seconds,
                    "running": state.engine.num_running,
                    "waiting": state.engine.num_waiting,
                }
            )
        status = "failed" if state.load_error else "loading"
        return JSONResponse({"status": status, "error": state.load_error}, status_code=503)

    @app.get("/metrics")
    async def metrics() -> Response:
        if not state.metrics:
            return Response(b"", media_type=CONTENT_TYPE_LATEST)
        _sample_gpu_memory(state)
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/engine/stats")
    async def engine_stats() -> dict[str, Any]:
        engine = engine_or_503()
        s = engine.stats
        return {
            "running": engine.num_running,
            "waiting": engine.num_waiting,
            "free_slots": len(engine._free_slots),
            "steps": s.steps,
            "max_batch_size": s.max_batch_size,
            "recent_batch_sizes": list(s.recent_batch_sizes)[-256:],
            "finished": s.finished,
            "cancelled": s.cancelled,
        }

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        engine_or_503()
        loaded = state.loaded
        assert loaded is not None
        card = p.ModelCard(
            id=loaded.version.alias,
            created=int(loaded.path.stat().st_mtime),
            version=loaded.version.id,
            digest=f"sha256:{loaded.version.digest}",
            max_model_len=loaded.max_model_len,
            demo=is_demo(loaded.path),
        )
        return p.ModelList(data=[card]).model_dump()

    def sampling(
        req: p.ChatCompletionRequest | p.CompletionRequest, prompt_len: int, requested: int | None
    ) -> SamplingParams:
        max_tokens = requested or min(config.default_max_tokens, max(1, state.loaded.max_model_len - prompt_len))  # type: ignore[union-attr]
        return SamplingParams(
            max_tokens=max_tokens,
            temperature=req.temperature,
            top_p=req.top_p,
            seed=req.seed,
            stop=req.stop_list(),
            ignore_eos=req.ignore_eos,
        )

    async def inject_faults() -> None:
        fault, m = config.fault, state.metrics
        if fault.error_rate and random.random() < fault.error_rate:
            if m:
                m.faults_injected.labels(model_version=m.version, kind="error").inc()
            raise EngineError(500, "Injected fault: the worker failed this request on purpose.", "injected_fault")
        if fault.extra_latency_s:
            await asyncio.sleep(fault.extra_latency_s)
            if m:
                m.faults_injected.labels(model_version=m.version, kind="latency").inc()

    @app.post("/v1/chat/completions")
    async def chat(req: p.ChatCompletionRequest, request: Request) -> Response:
        engine = engine_or_503()
        loaded = check_model(req.model)
        try:
            messages = [{"role": m.role, "content": m.text()} for m in req.messages]
            text = loaded.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception as exc:
            raise EngineError(400, f"Cannot apply the chat template: {exc}", "invalid_messages") from exc
        ids = loaded.tokenizer(text, add_special_tokens=False)["input_ids"]
        params = sampling(req, len(ids), req.effective_max_tokens())
        return await run_generation(engine, loaded, request, req, "chat", ids, params)

    @app.post("/v1/completions")
    async def completions(req: p.CompletionRequest, request: Request) -> Response:
        engine = engine_or_503()
        loaded = check_model(req.model)
        prompt = req.prompt[0] if isinstance(req.prompt, list) and isinstance(req.prompt[0], str) else req.prompt
        if isinstance(prompt, str):
            ids = loaded.tokenizer(prompt, add_special_tokens=True)["input_ids"]
        else:
            vocab = len(loaded.tokenizer)
            if any(not 0 <= t < vocab for t in prompt):
                raise EngineError(400, f"Prompt token ids must be in [0, {vocab}).", "invalid_prompt", param="prompt")
            ids = list(prompt)
        params = sampling(req, len(ids), req.effective_max_tokens())
        return await run_generation(engine, loaded, request, req, "completion", ids, params)

    async def run_generation(
        engine: Engine,
        loaded: LoadedModel,
        request: Request,
        req: Any,
        kind: str,
        ids: list[int],
        params: SamplingParams,
    ) -> Response:
        request_id = request.headers.get("x-request-id") or p.random_id("chatcmpl" if kind == "chat" else "cmpl")
        timeout = _timeout(request)  # the caller's deadline: generating past it is wasted work
        deadline = asyncio.get_running_loop().time() + timeout if timeout else None
        await inject_faults()
        handle = engine.submit(request_id, ids, params, asyncio.get_running_loop())
        if req.stream:
            events = stream_events(handle, loaded, req, kind, request_id, deadline)
            return StreamingResponse(
                events,
                media_type="text/event-stream",
                headers=headers(loaded, request_id) | {"Cache-Control": "no-cache"},
            )
        result = asyncio.ensure_future(collect(handle))
        gone = asyncio.ensure_future(_wait_disconnect(request))
        left = None if deadline is None else max(0.0, deadline - asyncio.get_running_loop().time())
        done, _ = await asyncio.wait({result, gone}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
        if result not in done:
            handle.cancel()
            result.cancel()
            gone.cancel()
            if not done:
                return _error(504, _DEADLINE_PASSED, "deadline_exceeded")
            return _error(499, "Client closed the request.", "client_disconnected")
        gone.cancel()
        text, last = result.result()
        usage = _usage(last)
        if last.finish_reason == "error":  # what was generated before the failure, for the caller's record
            return JSONResponse(
                p.error_body(500, "The engine failed while generating this request.", "engine_error")
                | {"usage": usage.model_dump()},
                status_code=500,
            )
        if kind == "chat":
            body: p.BaseModel = p.ChatCompletionResponse(
                id=request_id,
                model=loaded.version.alias,
                system_fingerprint=loaded.version.id,
                usage=usage,
                choices=[p.ChatChoice(message=p.ChatResponseMessage(content=text), finish_reason=last.finish_reason)],
            )
        else:
            prefix = req.prompt if req.echo and isinstance(req.prompt, str) else ""
            body = p.CompletionResponse(
                id=request_id,
                model=loaded.version.alias,
                system_fingerprint=loaded.version.id,
                usage=usage,
                choices=[p.CompletionChoice(text=prefix + text, finish_reason=last.finish_reason)],
            )
        return JSONResponse(body.model_dump(), headers=headers(loaded, request_id))

    async def collect(handle: RequestHandle) -> tuple[str, Any]:
        parts, last = [], None
        async for out in handle.outputs():
            parts.append(out.text)
            last = out
        return "".join(parts), last

    async def stream_events(
        handle: RequestHandle, loaded: LoadedModel, req: Any, kind: str, request_id: str, deadline: float | None
    ) -> AsyncIterator[bytes]:
        created = int(time.time())
        model, fp = loaded.version.alias, loaded.version.id

        # With continuous usage (vLLM's semantics) every chunk carries the usage so far, the
        # role chunk included, so a caller whose stream breaks knows what it was sent.
        running = req.continuous_usage

        def encode(text: str | None, finish: str | None, usage: p.Usage | None, role: bool = False) -> bytes:
            if kind == "chat":
                delta = p.ChatDelta(role="assistant" if role else None, content=text)
                c: p.BaseModel = p.ChatCompletionChunk(
                    id=request_id,
                    created=created,
                    model=model,
                    system_fingerprint=fp,
                    choices=[p.ChatChunkChoice(delta=delta, finish_reason=finish)],
                    usage=usage if running else None,
                )
            else:
                c = p.CompletionResponse(
                    id=request_id,
                    created=created,
                    model=model,
                    system_fingerprint=fp,
                    choices=[p.CompletionChoice(text=text or "", finish_reason=finish)],
                    usage=usage if running else None,
                )
            # a completion's usage may be absent but not null; a chat chunk's is null until the last
            absent = {"usage"} if kind != "chat" and not running else None
            return b"data: " + json.dumps(c.model_dump(exclude=absent)).encode() + b"\n\n"

        # A plain text delta is the same body every time but for its text: encode it once with a
        # marker and splice each delta in, instead of building and dumping a pydantic model per token.
        marker = "\u0000iw-text\u0000"
        head, _, tail = encode(marker, None, None).partition(json.dumps(marker).encode())

        def chunk(text: str | None, finish: str | None, usage: p.Usage | None, role: bool = False) -> bytes:
            if finish is None and not role and not running:
                return head + json.dumps(text).encode() + tail
            return encode(text, finish, usage, role)

        try:
            if kind == "chat":
                seq = handle.seq
                assert seq is not None  # Engine.submit gives every handle its sequence
                yield chunk(
                    "", None, p.Usage(prompt_tokens=len(seq.prompt_ids), total_tokens=len(seq.prompt_ids)), role=True
                )
            async for out in _until(handle.outputs(), deadline):
                if out is None:  # the deadline passed: stop generating, say so in-band
                    err = p.error_body(504, _DEADLINE_PASSED, "deadline_exceeded")
                    yield b"data: " + json.dumps(err).encode() + b"\n\n"
                    return
                usage = _usage(out) if running or out.finish_reason else None  # a pydantic model only where one is sent
                if out.finish_reason == "error":
                    err = p.error_body(500, "The engine failed while generating this request.", "engine_error")
                    yield (
                        b"data: "
                        + json.dumps(
                            err | ({"usage": usage.model_dump()} if req.include_usage and usage is not None else {})
                        ).encode()
                        + b"\n\n"
                    )
                    return
                if out.text or out.finish_reason:
                    yield chunk(out.text, out.finish_reason, usage)
                if out.finish_reason and req.include_usage and usage is not None:
                    body: dict[str, Any] = {
                        "id": request_id,
                        "object": "chat.completion.chunk" if kind == "chat" else "text_completion",
                        "created": created,
                        "model": model,
                        "system_fingerprint": fp,
                        "choices": [],
                        "usage": usage.model_dump(),
                    }
                    yield b"data: " + json.dumps(body).encode() + b"\n\n"
            yield b"data: [DONE]\n\n"
        finally:
            handle.cancel()  # no-op when finished; frees the slot when the client went away

    @app.post("/v1/embeddings")
    async def embeddings(req: p.EmbeddingRequest) -> Response:
        engine = engine_or_503()
        loaded = check_model(req.model)
        inputs = (
            req.input
            if isinstance(req.input, list) and req.input and not isinstance(req.input[0], int)
            else [req.input]
        )
        batch = [
            loaded.tokenizer(x, add_special_tokens=True)["input_ids"]
            if isinstance(x, str)
            else list(cast(list[int], x))  # a prompt of token ids: the input, or one of a list of them
            for x in inputs
        ]
        too_long = [len(b) for b in batch if len(b) > loaded.max_model_len]
        if too_long:
            raise EngineError(
                400,
                f"An input has {too_long[0]} tokens; this model's maximum context length is {loaded.max_model_len}.",
                "context_length_exceeded",
            )
        if any(len(b) == 0 for b in batch):
            raise EngineError(400, "Inputs must not be empty.", "empty_input")
        vectors = await asyncio.wrap_future(engine.run_job(lambda: _mean_pool(loaded, batch)))
        n = sum(len(b) for b in batch)
        if req.encoding_format == "base64":  # what the openai client asks for by default
            vectors = [base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode() for v in vectors]
        data = [p.EmbeddingData(index=i, embedding=v) for i, v in enumerate(vectors)]
        body = p.EmbeddingResponse(
            data=data, model=loaded.version.alias, usage=p.Usage(prompt_tokens=n, total_tokens=n)
        )
        return JSONResponse(body.model_dump(), headers=headers(loaded, p.random_id("emb")))

    return app


def _usage(out: Any) -> p.Usage:
    return p.Usage(
        prompt_tokens=out.prompt_tokens,
        completion_tokens=out.completion_tokens,
        total_tokens=out.prompt_tokens + out.completion_tokens,
    )


def _timeout(request: Request) -> float | None:
    try:
        return p.parse_timeout(request.headers.get(p.TIMEOUT_HEADER))
    except ValueError as exc:
        raise EngineError(400, str(exc), "invalid_timeout", param=p.TIMEOUT_HEADER) from exc


async def _until(outputs: AsyncIterator[Any], deadline: float | None) -> AsyncIterator[Any]:
    """The outputs until `deadline` (loop time), then one None."""
    it = outputs.__aiter__()
    while True:
        try:
            if deadline is None:
                out = await it.__anext__()
            else:
                async with asyncio.timeout_at(deadline):
                    out = await it.__anext__()
        except StopAsyncIteration:
            return
        except TimeoutError:
            yield None
            return
        yield out


async def _wait_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def _mean_pool(loaded: LoadedModel, batch: list[list[int]]) -> list[list[float]]:
    import torch

    width = max(len(b) for b in batch)
    ids = torch.zeros((len(batch), width), dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, b in enumerate(batch):
        ids[i, : len(b)] = torch.tensor(b)
        mask[i, : len(b)] = 1
    decoder = loaded.model.get_decoder()
    hidden = decoder(input_ids=ids.to(loaded.device), attention_mask=mask.to(loaded.device)).last_hidden_state.float()
    m = mask.to(hidden.device).unsqueeze(-1).float()
    pooled = (hidden * m).sum(1) / m.sum(1)
    return pooled.cpu().tolist()


def _sample_gpu_memory(state: WorkerState) -> None:
    import torch

    if state.metrics and torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            state.metrics.gpu_mem_used.labels(gpu=str(i)).set(total - free)
            state.metrics.gpu_mem_total.labels(gpu=str(i)).set(total)
