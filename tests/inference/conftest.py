from __future__ import annotations

from pathlib import Path

import pytest

from tests.servers import start_worker

DEMO = "inferwatch-demo-mistral"


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("worker-data")


@pytest.fixture(scope="session")
def worker(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    proc = start_worker(demo_dir, tmp_path_factory.mktemp("logs"), "--max-batch-size", "16")
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def client(worker):
    import openai

    with openai.OpenAI(base_url=worker.url + "/v1", api_key="unused", max_retries=0) as c:
        yield c
