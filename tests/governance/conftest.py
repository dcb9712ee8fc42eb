from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gateway.config import UpstreamConfig, VersionTarget
from tests.gateway.conftest import ADMIN_KEY, Harness, gateway_server, stub_server  # noqa: F401 - shared harness

PRICES = {
    "default": {"input_per_1m": 0.0, "output_per_1m": 1_000_000.0}
}  # $1 per completion token: costs easy to count


@contextlib.contextmanager
def stub_pair_gateway(
    tmp_path: Path, ledger_url: str | None = None, **overrides: Any
) -> Iterator[tuple[Harness, Any, Any]]:
    """A gateway over two stub versions (alias 'm' -> stub@1), with $1 per completion token."""
    with stub_server("stub@1") as s1, stub_server("stub@2") as s2:
        ups = {"stub@1": UpstreamConfig(urls=[s1.url]), "stub@2": UpstreamConfig(urls=[s2.url])}
        with gateway_server(
            tmp_path,
            ledger_url or f"sqlite:///{tmp_path / 'l.db'}",
            ups,
            {"m": [VersionTarget(version="stub@1")]},
            **{"prices": PRICES, **overrides},
        ) as h:
            yield h, s1, s2
