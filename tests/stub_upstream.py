"""An OpenAI-compatible stub upstream for gateway tests and the gateway benchmark.

Deterministic and fast: usage is derived from the request, text is canned. Its behaviour can
be switched at run time (slow, failing, dying mid-stream) to exercise the gateway's fault
paths. Not a model: the real worker is tested separately, and end to end.

    python -m tests.stub_upstream --port 9000 [--version stub@1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse


@dataclass
class Behaviour:
    version: str = "stub@1"
    served_model: str = "stub-model"
    digest: str | None = None  # the content digest /v1/models reports (as our worker does), if any
    delay_s: float = 0.0  # before answering
    chunk_delay_s: float = 0.0  # streaming: between chunks
    fail_status: int | None = None  # answer every completion with this status
    die_after_chunks: int | None = None  # streaming: drop the connection after N chunks
    healthy: bool = True
    reply_text: str | None = None  # completions answer this text instead of "tok tok ..."
    reply_chunk_chars: int = 3  # streaming reply_text: characters per chunk (so spans split across chunks)
    logprobs: bool = False  # answer with token logprobs that repeat the text (as vLLM does when asked)
    reports_usage: bool = True  # False: an upstream that never sends usage in a stream
    seen_headers: list[dict[str, str]] = field(default_factory=list)
    seen_bodies: list[dict[str, Any]] = field(default_factory=list)  # request bodies as received (last 1000)
    requests: int = 0

    def pieces(self, ct: int) -> list[str]:
        """The streamed text pieces of one completion."""
        if self.reply_text is None:
            return ["tok "] * ct
        n = max(1, self.reply_chunk_chars)
        return [self.reply_text[i : i + n] for i in range(0, len(self.reply_text), n)] or [""]


def completion_tokens(body: dict[str, Any]) -> int:
    return int(body.get("max_tokens") or 8)


def prompt_tokens(body: dict[str, Any]) -> int:
    if "messages" in body:
        return sum(len(str(m.get("content", "")).split()) for m in body["messages"]) + 3
    if "input" in body:
        inp = body["input"]
        return sum(len(str(x).split()) for x in (inp if isinstance(inp, list) else [inp]))
    return len(str(body.get("prompt", "")).split()) + 1


def create_stub(b: Behaviour) -> FastAPI:
    app = FastAPI()

    @app.get("/v1/models")
    async def models() -> Response:
        if not b.healthy:
            return JSONResponse({"error": {"message": "down"}}, status_code=503)
        card = {"id": b.served_model, "object": "model", "created": 0, "owned_by": "stub", "version": b.version}
        return JSONResponse({"object": "list", "data": [card | ({"digest": b.digest} if b.digest else {})]})

    async def generate(request: Request, kind: str) -> Response:
        body = await request.json()
        b.requests += 1
        b.seen_headers.append(dict(request.headers))
        b.seen_bodies.append(body)
        if len(b.seen_headers) > 1000:
            del b.seen_headers[:500]
        if len(b.seen_bodies) > 1000:
            del b.seen_bodies[:500]
        if b.delay_s:
            await asyncio.sleep(b.delay_s)
        if b.fail_status:
            return JSONResponse(
                {
                    "error": {
                        "message": f"stub failure {b.fail_status}",
                        "type": "server_error",
                        "code": None,
                        "param": None,
                    }
                },
                status_code=b.fail_status,
            )
        pt, ct = prompt_tokens(body), completion_tokens(body)
        usage = {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}
        rid = request.headers.get("x-request-id", "stub")
        headers = {"x-model-version": b.version}
        if kind == "embeddings":
            return JSONResponse(
                {
                    "object": "list",
                    "model": b.served_model,
                    "data": [{"object": "embedding", "index": 0, "embedding": [0.0, 1.0]}],
                    "usage": {"prompt_tokens": pt, "total_tokens": pt},
                },
                headers=headers,
            )
        if not body.get("stream"):
            text = "tok " * ct if b.reply_text is None else b.reply_text
            choice = (
                {"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": text}}
                if kind == "chat"
                else {"index": 0, "finish_reason": "length", "text": text}
            )
            if b.logprobs:
                choice["logprobs"] = {"content": [{"token": text, "logprob": -0.1, "bytes": None, "top_logprobs": []}]}
            return JSONResponse(
                {
                    "id": rid,
                    "object": "chat.completion" if kind == "chat" else "text_completion",
                    "created": int(time.time()),
                    "model": b.served_model,
                    "choices": [choice],
                    "usage": usage,
                },
                headers=headers,
            )

        options = body.get("stream_options") or {}
        include_usage = b.reports_usage and options.get("include_usage")
        running = include_usage and options.get("continuous_usage_stats")  # as vLLM: a piece is a token

        async def events():
            obj = "chat.completion.chunk" if kind == "chat" else "text_completion"
            pieces = b.pieces(ct)
            for i, piece in enumerate(pieces):
                if b.chunk_delay_s:
                    await asyncio.sleep(b.chunk_delay_s)
                if b.die_after_chunks is not None and i >= b.die_after_chunks:
                    raise ConnectionResetError("stub dies mid-stream")
                c = {"index": 0, "delta": {"content": piece}} if kind == "chat" else {"index": 0, "text": piece}
                if b.logprobs:
                    c["logprobs"] = {"content": [{"token": piece, "logprob": -0.1, "bytes": None, "top_logprobs": []}]}
                if i == len(pieces) - 1:
                    c["finish_reason"] = "length"
                chunk = {"id": rid, "object": obj, "created": 0, "model": b.served_model, "choices": [c]}
                if running:
                    chunk["usage"] = {"prompt_tokens": pt, "completion_tokens": i + 1, "total_tokens": pt + i + 1}
                yield f"data: {json.dumps(chunk)}\n\n".encode()
            if include_usage:
                last = {"id": rid, "object": obj, "created": 0, "model": b.served_model, "choices": [], "usage": usage}
                yield f"data: {json.dumps(last)}\n\n".encode()
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        return await generate(request, "chat")

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        return await generate(request, "completion")

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Response:
        return await generate(request, "embeddings")

    return app


def main() -> None:
    import uvicorn

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--version", default="stub@1")
    args = ap.parse_args()
    uvicorn.run(
        create_stub(Behaviour(version=args.version)),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
