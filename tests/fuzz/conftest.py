from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.config import Limits, TenantConfig, UpstreamConfig, VersionTarget
from tests.gateway.conftest import ADMIN_KEY, Harness, gateway_server, stub_server


@pytest.fixture(scope="module")
def fuzz_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """One gateway for a module of fuzz cases: stub upstream, SQLite ledger, no rate limits."""
    tmp = tmp_path_factory.mktemp("fuzz")
    with stub_server() as stub:
        ups = {"stub@1": UpstreamConfig(urls=[stub.url])}
        with gateway_server(
            tmp,
            f"sqlite:///{tmp / 'l.db'}",
            ups,
            {"m": [VersionTarget(version="stub@1")]},
            tenants={"acme": TenantConfig(), "globex": TenantConfig()},
            default_limits=Limits(rpm=None, tpm=None),
            request_timeout_s=10,
            first_byte_timeout_s=5,
        ) as h:
            h.keys["admin"] = ADMIN_KEY
            yield h


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.fuzz.seed import fuzz_seed, replay_hint

    value, source = fuzz_seed()
    terminalreporter.write_line(f"schema fuzz seed {value} ({source}); {replay_hint(value)}")
