"""Background client traffic for fault tests: a realistic mix, every outcome kept."""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field

import httpx

CHAT = {"model": "m", "messages": [{"role": "user", "content": "how are the ledgers today"}], "max_tokens": 5}
EMBED = {"model": "m", "input": "a few words to embed"}


@dataclass
class Outcome:
    kind: str  # "chat", "stream" or "embeddings"
    status: int  # HTTP status, 0 when no response came
    request_id: str | None
    error_event: str | None = None  # the code of an in-band error event in a stream
    done: bool = False  # a stream ended with [DONE]
    usage: dict | None = None


def call(client: httpx.Client, base: str, headers: dict[str, str], kind: str) -> Outcome:
    """One request of `kind`; a stream is read to its end."""
    try:
        if kind == "embeddings":
            r = client.post(base + "/v1/embeddings", json=EMBED, headers=headers)
            return Outcome(kind, r.status_code, r.headers.get("x-request-id"), usage=_usage(r))
        if kind == "chat":
            r = client.post(base + "/v1/chat/completions", json=CHAT, headers=headers)
            return Outcome(kind, r.status_code, r.headers.get("x-request-id"), usage=_usage(r))
        body = CHAT | {"stream": True, "stream_options": {"include_usage": True}}
        with client.stream("POST", base + "/v1/chat/completions", json=body, headers=headers) as r:
            out = Outcome(kind, r.status_code, r.headers.get("x-request-id"))
            for line in r.iter_lines():
                if line == "data: [DONE]":
                    out.done = True
                elif line.startswith("data: "):
                    event = json.loads(line[6:])
                    if "error" in event:
                        out.error_event = event["error"].get("code")
                    elif event.get("usage"):
                        out.usage = event["usage"]
            return out
    except httpx.HTTPError:
        return Outcome(kind, 0, None)


def _usage(r: httpx.Response) -> dict | None:
    try:
        return r.json().get("usage")
    except ValueError:
        return None


@dataclass
class Traffic:
    """`clients` threads sending the mix chat, stream, embeddings until `stop()`."""

    base: str
    headers: dict[str, str]
    clients: int = 4
    pause_s: float = 0.02
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(self.clients)]

    def _run(self, i: int) -> None:
        kinds = itertools.islice(itertools.cycle(("chat", "stream", "embeddings")), i, None)
        with httpx.Client(timeout=60) as client:
            for kind in kinds:
                if self._stop.is_set():
                    return
                out = call(client, self.base, self.headers, kind)
                with self._lock:
                    self.outcomes.append(out)
                self._stop.wait(self.pause_s)

    def __enter__(self) -> "Traffic":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> list[Outcome]:
        self._stop.set()
        for t in self._threads:
            t.join(120)
        return self.outcomes

    def count(self) -> int:
        with self._lock:
            return len(self.outcomes)
