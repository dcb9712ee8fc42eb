"""Test and benchmark helpers (not used at run time): a throwaway PostgreSQL server and
sample records.

initdb refuses to run as root, so as root the server runs as the `postgres` system user.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import random
import shutil
import socket
import subprocess
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import uuid4

import psycopg

from ledger.record import ErrorType, RequestRecord, SafetyHit


def find_pg_bin() -> Path | None:
    """Directory of the newest PostgreSQL server binaries (INFERWATCH_PG_BIN overrides)."""
    env = os.environ.get("INFERWATCH_PG_BIN")
    dirs = [Path(env)] if env else [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")]
    dirs = [d for d in dirs if (d / "pg_ctl").exists() and (d / "initdb").exists()]
    if dirs:
        return max(dirs, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0)
    found = shutil.which("pg_ctl")
    return Path(found).parent if found and shutil.which("initdb") else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TempPostgres:
    """initdb into a temp dir, run on a free localhost port; `stop()`/`start()` simulate an
    outage, `close()` removes everything. `fast=True` turns fsync off (tests only)."""

    def __init__(self, bin_dir: Path, *, fast: bool = True) -> None:
        self.bin = bin_dir
        self.fast = fast
        self.root = Path(tempfile.mkdtemp(prefix="iw-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._user: str | None = None
        if os.geteuid() == 0:
            self._user = "postgres"
            pw = pwd.getpwnam(self._user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-instructions")
        self.running = False
        atexit.register(self.close)

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin / tool), *args]
        if self._user:
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=self.root)
        if proc.returncode != 0:
            raise RuntimeError(f"{tool} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
        return proc

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        if self.fast:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", opts, "-w", "-t", "60", "start"
        )
        self.running = True

    def stop(self) -> None:
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
            self.running = False

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """CREATE DATABASE (optionally from a template); returns its URL."""
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return self.url(name)

    def close(self) -> None:
        try:
            self.stop()
        except RuntimeError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)


# --- sample records --------------------------------------------------------------------------


def make_record(**overrides: object) -> RequestRecord:
    """A plausible successful chat record; override any field."""
    fields: dict[str, object] = dict(
        request_id=uuid4().hex,
        started_at=datetime(2025, 1, 6, 12, 0, 30, tzinfo=timezone.utc),
        tenant="acme",
        key_id="iw-acme",
        operation="chat",
        alias="demo",
        model_version="demo@v1",
        upstream="http://worker:8001",
        status_code=200,
        latency_s=0.8,
        ttft_s=0.12,
        tpot_s=0.02,
        prompt_tokens=40,
        completion_tokens=33,
        cost_usd=0.00042,
        finish_reason="stop",
    )
    fields.update(overrides)
    return RequestRecord(**fields)  # type: ignore[arg-type]


def random_records(n: int, seed: int = 0, *, start: datetime | None = None, minutes: int = 5) -> list[RequestRecord]:
    """`n` varied records over `minutes` minutes: several tenants, aliases, versions (some
    None), status codes, error types, safety hits, missing ttft/tpot."""
    rng = random.Random(seed)
    t0 = start or datetime(2025, 1, 6, 12, 0, tzinfo=timezone.utc)
    out = []
    for i in range(n):
        status = rng.choice([200] * 8 + [400, 429, 500, 503, 499])
        error = {
            200: None,
            400: ErrorType.INVALID_REQUEST,
            429: ErrorType.RATE_LIMITED,
            500: ErrorType.UPSTREAM_ERROR,
            503: ErrorType.NO_HEALTHY_UPSTREAM,
            499: ErrorType.CLIENT_DISCONNECT,
        }[status]
        streamed = rng.random() < 0.5
        ttft = None if status >= 400 and rng.random() < 0.7 else round(rng.uniform(0.0, 3.0), 4)
        hits = []
        if rng.random() < 0.15:
            hits.append(
                SafetyHit("input", "pii", "regex", rng.choice(["flag", "redact", "block"]), 0.9, "my card is [CARD]")
            )
        if rng.random() < 0.05:
            hits.append(SafetyHit("output", "S10", "llamaguard", "flag", 0.61))
        out.append(
            make_record(
                request_id=f"req-{seed}-{i:06d}",
                started_at=t0 + timedelta(seconds=rng.uniform(0, minutes * 60)),
                tenant=rng.choice(["acme", "globex", "initech"]),
                alias=rng.choice(["chat", "code"]),
                model_version=rng.choice(["m@v1", "m@v2", None]),
                status_code=status,
                error_type=error,
                latency_s=round(rng.uniform(0.005, 100.0) if rng.random() < 0.1 else rng.uniform(0.005, 3.0), 4),
                ttft_s=ttft,
                tpot_s=None if ttft is None or rng.random() < 0.2 else round(rng.uniform(0.001, 0.3), 4),
                prompt_tokens=rng.randint(0, 4000),
                completion_tokens=rng.randint(0, 1000),
                cost_usd=round(rng.uniform(0, 0.02), 6),
                stream=streamed,
                finish_reason=rng.choice(["stop", "length", None]),
                safety=hits,
                client_disconnected=status == 499,
                cache_hit=(cached := rng.random() < 0.1),
                cache_lookup=cached or i % 3 == 0,
                retries=rng.randint(0, 2),
                trace_id=f"{i:032x}",
            )
        )
    return out
