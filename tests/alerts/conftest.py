from __future__ import annotations

import pytest

from tests.alerts._promtool import require_promtool


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of promtool; skips without it, fails under CI."""
    return require_promtool()
