"""Property-based fuzzing of every gateway route from the app's own OpenAPI schema
(schemathesis), with an admin key and with a tenant key: never a 5xx, never a stack trace,
and every error is an OpenAI-format JSON body.

Three depths: a fixed handful of examples per route; a slice of the long run seeded from the
commit (`tests/fuzz/seed.py`), so CI covers other examples on every commit and a failure
replays from the seed it prints; and the long run itself (`-m slow`), on the same seed."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, seed, settings

from inferwatch.app import create_app
from inferwatch.settings import Settings
from tests.fuzz.seed import fuzz_seed, replay_hint
from tests.gateway.conftest import ADMIN_KEY, Harness


def _openapi() -> dict:
    """The schema the app itself serves (built once at collection, nothing started)."""
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(data_dir=Path(tmp), admin_key=ADMIN_KEY, safety={"enabled": False}))
        return app.openapi()


schema = schemathesis.openapi.from_dict(_openapi())
FUZZ = settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
SEED = fuzz_seed()[0]
# database=None: what a seeded run generates depends on the seed alone, not on earlier runs.
# The slice skips the explicit phase (schemathesis's fixed coverage cases): the tests above run those.
FUZZ_SLICE = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    phases=[Phase.generate, Phase.shrink],
)
FUZZ_LONG = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def check(case, response) -> None:
    where = (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]} ({replay_hint(SEED)})"
    )
    assert response.status_code < 500, where
    assert "Traceback" not in response.text and 'File "/' not in response.text, where
    if response.status_code >= 400:
        assert response.headers.get("content-type", [""])[0].startswith("application/json"), where
        assert response.json()["error"]["message"], where


def _call(fuzz_gateway: Harness, case, who: str) -> None:
    response = case.call(base_url=fuzz_gateway.url, headers={"authorization": f"Bearer {fuzz_gateway.keys[who]}"})
    check(case, response)


@schema.parametrize()
@FUZZ
def test_every_route_with_a_tenant_key(fuzz_gateway, case):
    _call(fuzz_gateway, case, "acme")


@schema.parametrize()
@FUZZ
def test_every_route_with_the_admin_key(fuzz_gateway, case):
    _call(fuzz_gateway, case, "admin")


@schema.parametrize()
@FUZZ_SLICE
@seed(SEED)
def test_every_route_seeded_slice(fuzz_gateway, case):
    _call(fuzz_gateway, case, "admin")
    _call(fuzz_gateway, case, "acme")


@pytest.mark.slow
@schema.parametrize()
@FUZZ_LONG
@seed(SEED)
def test_every_route_long_run(fuzz_gateway, case):
    _call(fuzz_gateway, case, "admin")
    _call(fuzz_gateway, case, "acme")
