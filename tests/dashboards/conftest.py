from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.dashboards._stack import Stack, demo_stack


def _require(binary: str) -> None:
    if shutil.which(binary) is None:
        reason = f"{binary} not found on PATH (apt-get install prometheus)"
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(reason + "; CI must install it", pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def promtool() -> str:
    _require("promtool")
    return shutil.which("promtool")  # type: ignore[return-value]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Prometheus (Debian's package) scraping a gateway and a demo worker after real traffic."""
    _require("prometheus")
    with demo_stack(tmp_path_factory.mktemp("dash-stack")) as s:
        yield s
