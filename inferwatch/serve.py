"""`inferwatch serve`: workers, gateway and ledger on one machine."""
from __future__ import annotations

import logging

import uvicorn

from gateway.config import Price, UpstreamConfig, VersionTarget
from gateway.state import GovernanceStore
from ledger.db import create_engine_for, migrate

from .app import create_app
from .settings import Settings
from .workers import ManagedWorker, Supervisor, gpu_count

log = logging.getLogger("inferwatch")


def start_local_workers(settings: Settings) -> Supervisor:
    """Without configured upstreams: one worker per GPU (else one on CPU) serving the
    configured or demo model, behind the default alias."""
    gpus = gpu_count()
    n = settings.workers or max(1, gpus)
    log_dir = settings.data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    workers = [ManagedWorker(settings.worker, i if gpus else None, log_dir) for i in range(n)]
    for w in workers:
        w.start()
    versions = {w.url: w.wait_ready()["version"] for w in workers}
    log.info("workers ready: %s", versions)
    version = next(iter(versions.values()))
    settings.gateway.upstreams[version] = UpstreamConfig(urls=[w.url for w in workers])
    settings.gateway.aliases.setdefault(settings.default_alias, [VersionTarget(version=version, weight=1.0)])
    # the demo is billed like a small hosted Mistral model, so cost views are not all zero
    settings.gateway.prices.setdefault("default", Price(input_per_1m=0.25, output_per_1m=0.25))
    supervisor = Supervisor(workers)
    supervisor.start()
    return supervisor


def ensure_default_tenant(settings: Settings) -> str | None:
    """The default tenant, and a development key the first time (printed once, stored hashed)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # the SQLite ledger lives there
    engine = create_engine_for(settings.ledger_url)
    try:
        migrate(engine)
        store = GovernanceStore(engine)
        store.upsert_tenant(settings.default_tenant, settings.default_tenant)
        if store.keys(settings.default_tenant):
            return None
        return store.create_key(settings.default_tenant).secret
    finally:
        engine.dispose()


def serve(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "apscheduler"):  # a line per health check or job run is noise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    supervisor = start_local_workers(settings) if not settings.gateway.upstreams else None
    try:
        dev_key = ensure_default_tenant(settings)
        app = create_app(settings)
        base = f"http://{settings.host}:{settings.port}/v1"
        print(f"\ninferwatch gateway on {base}  (models: {', '.join(settings.gateway.aliases)})", flush=True)
        if dev_key:
            print(f"development API key for tenant '{settings.default_tenant}' (shown once, stored hashed):\n  {dev_key}\n", flush=True)
        else:
            print(f"tenant '{settings.default_tenant}' already has keys; make another with `inferwatch keys create`\n", flush=True)
        uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level, access_log=False, timeout_graceful_shutdown=30)
    finally:
        if supervisor:
            supervisor.stop()
