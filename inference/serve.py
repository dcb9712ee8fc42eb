"""Run the worker with uvicorn."""

from __future__ import annotations

import logging

import uvicorn

from .config import WorkerConfig
from .server import create_app


def run(config: WorkerConfig, log_level: str = "info") -> None:
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # SIGTERM: uvicorn stops accepting, waits for in-flight requests, then the lifespan drains the engine.
    uvicorn.run(
        create_app(config),
        host=config.host,
        port=config.port,
        log_level=log_level,
        timeout_graceful_shutdown=60,
        access_log=False,
        # idle connections outlive the gateway's pool (4 s), so the gateway closes them first
        timeout_keep_alive=30,
    )
