"""A stub guard model (not a model): an OpenAI-compatible ``/v1/completions`` that answers in
Llama Guard 3's format, from a keyword table, for the guard-model plumbing tests.

It reads the conversation out of the prompt the client built, so a client that sends the
wrong prompt gets no verdict. ``hold`` (a threading.Event) keeps every answer back until set;
``delay_s`` delays each; ``fail_status`` answers every call with that status.
"""

from __future__ import annotations

import asyncio
import re
import threading
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

_TURN = re.compile(r"<BEGIN CONVERSATION>\n\n(?:User|Agent): (.*)\n\n<END CONVERSATION>", re.S)


@dataclass
class GuardStub:
    verdicts: dict[str, str] = field(
        default_factory=lambda: {"bomb": "unsafe\nS9", "steal": "unsafe\nS2", "garble": "maybe?"}
    )
    delay_s: float = 0.0
    fail_status: int | None = None
    hold: threading.Event | None = None
    prompts: list[str] = field(default_factory=list)

    def answer(self, prompt: str) -> str | None:
        m = _TURN.search(prompt)
        if m is None or "S14: Code Interpreter Abuse." not in prompt:
            return None
        text = m.group(1).lower()
        return next((v for k, v in self.verdicts.items() if k in text), "safe")


def guard_stub_app(stub: GuardStub) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/completions")
    async def completions(request: Request) -> JSONResponse:
        body = await request.json()
        stub.prompts.append(body["prompt"])
        if stub.hold is not None:
            await asyncio.to_thread(stub.hold.wait, 60)
        if stub.delay_s:
            await asyncio.sleep(stub.delay_s)
        if stub.fail_status:
            return JSONResponse(
                {"error": {"message": "stub failure", "type": "server_error"}}, status_code=stub.fail_status
            )
        text = stub.answer(body["prompt"])
        if text is None:
            return JSONResponse(
                {"error": {"message": "not a Llama Guard 3 prompt", "type": "invalid_request_error"}}, status_code=400
            )
        return JSONResponse(
            {
                "id": "g1",
                "object": "text_completion",
                "model": body["model"],
                "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}],
            }
        )

    return app
