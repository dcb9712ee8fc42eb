from __future__ import annotations

from pathlib import Path

import pytest

from inferwatch.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_example_config_loads_and_env_overrides(monkeypatch):
    monkeypatch.setenv("INFERWATCH_PORT", "9123")
    monkeypatch.setenv("INFERWATCH_GATEWAY__MAX_RETRIES", "3")
    s = load_settings(ROOT / "examples" / "inferwatch.yaml", {"host": "127.0.0.9"})
    assert s.port == 9123 and s.host == "127.0.0.9"
    assert s.gateway.max_retries == 3
    assert s.gateway.price_for("vllm-mixtral", "mixtral").input_per_1m == 0.7
    assert [t.weight for t in s.gateway.aliases["mistral-7b"]] == [95, 5]


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_settings(tmp_path / "nope.yaml")


def test_alias_pointing_nowhere_is_rejected(tmp_path, monkeypatch):
    bad = tmp_path / "bad.yaml"
    bad.write_text("gateway:\n  aliases: {m: [{version: ghost}]}\n")
    with pytest.raises(ValueError, match="ghost"):
        load_settings(bad)


def test_loading_a_file_leaves_no_global_state(monkeypatch):
    monkeypatch.delenv("INFERWATCH_CONFIG", raising=False)
    load_settings(ROOT / "examples" / "inferwatch.yaml")
    assert load_settings().gateway.aliases == {}


def test_the_cpu_overflow_example_loads_with_its_fallback_chains():
    s = load_settings(ROOT / "examples" / "cpu-overflow.yaml")
    assert s.gateway.fallbacks["mistral-7b"].targets == ["mistral-7b-cpu"]
    assert "queue_full" in s.gateway.fallbacks["mistral-7b"].reasons
    assert s.gateway.fallbacks["mistral-7b-cpu"].reasons == ["context_window"]
    assert s.gateway.tenants["nightly-evals"].priority == "batch"
    assert s.gateway.upstreams["mistral-7b-instruct@3f2a9c1b7d0e"].max_parallel_requests == 32
