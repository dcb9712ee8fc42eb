"""What the console is given by the composition root: the ledger and the services of the other
packages, plus the few gateway functions it needs, as plain callables (the console never
imports the data path)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from sqlalchemy import Engine

from canary.service import CanaryService
from reports.service import ReportService
from slo.service import SLOService


class Principal(Protocol):
    """Who a key belongs to (the gateway's `Principal`)."""

    @property
    def tenant(self) -> str | None: ...

    @property
    def key_id(self) -> str | None: ...

    @property
    def is_admin(self) -> bool: ...


# "Bearer <key>" -> caller; raises (status 401) on a bad key
Authenticate = Callable[[str | None], Awaitable[Principal]]
AliasTargets = list[dict[str, Any]]  # [{"version": ..., "weight": ...}]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class ConsoleDeps:
    engine: Engine
    authenticate: Authenticate
    slos: SLOService
    canary: CanaryService
    reports: ReportService
    health: Callable[[], dict[str, Any]]  # the body of GET /health: upstreams and the ledger writer
    # budget states of one tenant or all, as GET /v1/usage has them
    budgets: Callable[[str | None], list[dict[str, Any]]]
    # (alias, actor) -> the targets now; LookupError if none
    rollback_alias: Callable[[str, str], Awaitable[AliasTargets]]
    secret: bytes  # signs sessions; the same on every replica
    session_ttl_s: float = 8 * 3600
    clock: Callable[[], datetime] = utcnow
