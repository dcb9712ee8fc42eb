"""`inferwatch serve`: workers, gateway and ledger on one machine."""

from __future__ import annotations

import logging
import signal
from types import FrameType

import uvicorn

from gateway.config import Price, UpstreamConfig, VersionTarget
from ledger.db import create_engine_for, migrate
from ledger.governance import GovernanceStore

from .app import create_app
from .settings import Settings
from .workers import ManagedWorker, Supervisor, gpu_count

log = logging.getLogger("inferwatch")


def start_local_workers(settings: Settings, supervisor: Supervisor) -> None:
    """Without configured upstreams: one worker per GPU (else one on CPU) serving the
    configured or demo model, behind the default alias. The workers belong to `supervisor`
    from the moment they are started, so a signal during start-up stops them too."""
    gpus = gpu_count()
    n = settings.workers or max(1, gpus)
    log_dir = settings.data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    workers = [ManagedWorker(settings.worker, i if gpus else None, log_dir) for i in range(n)]
    supervisor.workers.extend(workers)
    for w in workers:
        w.start()
    versions = {w.url: w.wait_ready()["version"] for w in workers}
    log.info("workers ready: %s", versions)
    version = next(iter(versions.values()))
    settings.gateway.upstreams[version] = UpstreamConfig(urls=[w.url for w in workers])
    settings.gateway.aliases.setdefault(settings.default_alias, [VersionTarget(version=version, weight=1.0)])
    # the demo is billed like a small hosted Mistral model, so cost views are not all zero
    settings.gateway.prices.setdefault("default", Price(input_per_1m=0.25, output_per_1m=0.25))
    supervisor.start()


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


class _Signalled(BaseException):
    """SIGTERM or SIGINT reached the process. uvicorn handles the first one itself (it stops
    accepting, lets in-flight requests finish) and then re-raises it; without a handler of
    ours that re-raise would kill the process before the co-located workers are stopped."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_signalled(signum: int, frame: FrameType | None) -> None:
    raise _Signalled(signum)


def serve(settings: Settings) -> None:
    """Run workers (unless upstreams are configured), gateway and ledger until SIGTERM or
    SIGINT; then stop the workers and die of that signal, as uvicorn alone would."""
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "apscheduler"):  # a line per health check or job run is noise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    stop_signals = (signal.SIGTERM, signal.SIGINT)
    previous = {s: signal.signal(s, _raise_signalled) for s in stop_signals}
    supervisor = Supervisor([])
    received: int | None = None
    try:
        if not settings.gateway.upstreams:
            start_local_workers(settings, supervisor)
        dev_key = ensure_default_tenant(settings)
        app = create_app(settings)
        base = f"http://{settings.host}:{settings.port}/v1"
        print(f"\ninferwatch gateway on {base}  (models: {', '.join(settings.gateway.aliases)})", flush=True)
        if dev_key:
            print(
                f"development API key for tenant '{settings.default_tenant}' (shown once, stored hashed):\n"
                f"  {dev_key}\n",
                flush=True,
            )
        else:
            print(
                f"tenant '{settings.default_tenant}' already has keys; make another with `inferwatch keys create`\n",
                flush=True,
            )
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            access_log=False,
            timeout_graceful_shutdown=30,
        )
    except _Signalled as signalled:
        received = signalled.signum
    finally:
        for s in stop_signals:  # a second signal must not cut the workers' stop short
            signal.signal(s, signal.SIG_IGN)
        supervisor.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
    if received is not None:
        log.info("workers stopped; exiting on %s", signal.Signals(received).name)
        signal.signal(received, signal.SIG_DFL)
        signal.raise_signal(received)
