"""The gateway in front of a second, independent OpenAI-compatible server: LiteLLM's proxy
(installed by install_second_server.sh into its own venv), serving a model configured with a
`mock_response`. The real `openai` client talks to the gateway; every request is recorded
with the usage LiteLLM reported. Skipped outside CI when LiteLLM is not installed; in CI it
must run (CI runs the install script)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from gateway.config import UpstreamConfig, VersionTarget
from tests.gateway.conftest import gateway_server
from tests.servers import ROOT, Proc, free_port, spawn_logged, wait_ready

MASTER_KEY = "sk-litellm-test-0123456789abcdef"
REPLY = "Hello from an independent OpenAI-compatible server."
BINARY = ROOT / ".cache" / "litellm-venv" / "bin" / "litellm"


@pytest.fixture(scope="module")
def litellm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    if not BINARY.exists():
        reason = f"LiteLLM not installed at {BINARY}: run tests/scaleout/install_second_server.sh"
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("litellm")
    config = tmp / "litellm.yaml"
    config.write_text(
        json.dumps(
            {
                "model_list": [
                    {
                        "model_name": "mock-gpt",
                        "litellm_params": {"model": "openai/mock-gpt", "api_key": "unused", "mock_response": REPLY},
                    }
                ],
                "general_settings": {"master_key": MASTER_KEY},
                "litellm_settings": {"telemetry": False},
            }
        )
    )
    port = free_port()
    log = tmp / "litellm.log"
    proc = spawn_logged(
        [str(BINARY), "--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"],
        log,
        cwd=tmp,
        env={**os.environ, "LITELLM_LOG": "ERROR", "DISABLE_ADMIN_UI": "True"},
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, log, path="/health/liveliness", deadline_s=180)
        yield Proc(url, proc, log)
    finally:
        Proc(url, proc, log).stop()


def test_gateway_in_front_of_litellm(tmp_path: Path, litellm: Proc):
    ups = {"litellm@mock": UpstreamConfig(urls=[litellm.url], api_key=MASTER_KEY, provider="litellm")}
    with gateway_server(
        tmp_path, f"sqlite:///{tmp_path / 'l.db'}", ups, {"chat": [VersionTarget(version="litellm@mock")]}
    ) as h:
        client = openai.OpenAI(base_url=h.url + "/v1", api_key=h.keys["acme"], max_retries=0)
        models = client.models.list()
        assert [m.id for m in models.data] == ["chat"]
        replica = h.gateway.pools.all_replicas()[0]
        assert replica.healthy and replica.served_model == "mock-gpt"  # discovered from LiteLLM's /v1/models

        plain = client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "hi"}], max_tokens=16
        )
        assert plain.choices[0].message.content == REPLY
        assert plain.usage.completion_tokens > 0

        stream = client.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == REPLY
        usage = next(c.usage for c in chunks if c.usage)

        # the same stream read to the end of the body: the gateway closes it once LiteLLM has
        with httpx.stream(
            "POST",
            h.url + "/v1/chat/completions",
            headers=h.headers(),
            timeout=30,
            json={"model": "chat", "messages": [{"role": "user", "content": "hi"}], "stream": True},
        ) as r:
            assert r.status_code == 200 and list(r.iter_lines())[-2:] == ["data: [DONE]", ""]

        plain_row, client_row, read_row = sorted(h.rows(), key=lambda r: r.started_at)
        for row in (plain_row, client_row, read_row):
            assert (row.model_version, row.upstream) == ("litellm@mock", litellm.url)
        assert (plain_row.status_code, plain_row.stream) == (200, False)
        assert (read_row.status_code, read_row.stream) == (200, True)
        # the openai client closes the connection right after [DONE]: still a complete stream
        assert (client_row.status_code, client_row.stream) == (200, True)
        assert (plain_row.prompt_tokens, plain_row.completion_tokens) == (
            plain.usage.prompt_tokens,
            plain.usage.completion_tokens,
        )
        assert (client_row.prompt_tokens, client_row.completion_tokens) == (
            usage.prompt_tokens,
            usage.completion_tokens,
        )
        assert read_row.completion_tokens > 0
