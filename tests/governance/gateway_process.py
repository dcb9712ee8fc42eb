"""`uvicorn --factory tests.governance.gateway_process:app`: the platform app from
INFERWATCH_CONFIG, as a separate gateway process (one replica of several)."""

from __future__ import annotations

from fastapi import FastAPI


def app() -> FastAPI:
    from inferwatch.app import create_app
    from inferwatch.settings import load_settings

    return create_app(load_settings())
