"""A request's deadline: from the tenant's default timeout or the client's header, capped by
the gateway's request_timeout_s; passed on to the worker as the time it has left."""

from __future__ import annotations

import time
from dataclasses import dataclass

from inference.protocol import TIMEOUT_HEADER, parse_timeout

from .errors import ErrorCode, GatewayError

SLACK_S = 0.05


def requested_timeout(header: str | None) -> float | None:
    """The client's timeout in seconds, or None when it sent none; 400 naming the header otherwise."""
    try:
        return parse_timeout(header)
    except ValueError as exc:
        raise GatewayError(400, str(exc), ErrorCode.INVALID_TIMEOUT, param=TIMEOUT_HEADER) from exc


@dataclass(frozen=True)
class Deadline:
    """When the request must have been answered (time.perf_counter, the clock of a request's
    t0), and the timeout it came from."""

    at: float
    timeout_s: float

    @classmethod
    def start(
        cls, header: str | None, tenant_default_s: float | None, cap_s: float, now: float | None = None
    ) -> "Deadline":
        """The header wins over the tenant's default; neither may exceed the gateway's cap."""
        timeout = min(requested_timeout(header) or tenant_default_s or cap_s, cap_s)
        return cls((time.perf_counter() if now is None else now) + timeout, timeout)

    def remaining(self, now: float | None = None) -> float:
        return max(0.0, self.at - (time.perf_counter() if now is None else now))

    def expired(self, now: float | None = None) -> bool:
        """Under SLACK_S left: a timer set for the deadline may fire a little before it, and so
        little time is too little to try anything else."""
        return self.remaining(now) < SLACK_S

    def header(self, now: float | None = None) -> dict[str, str]:
        """What the worker is told: the seconds left (a duration, so clocks need not agree)."""
        return {TIMEOUT_HEADER: f"{max(self.remaining(now), 0.001):.3f}"}

    def error(self) -> GatewayError:
        return GatewayError(
            504,
            f"The request's deadline of {self.timeout_s:g} s passed before it was answered "
            f"(set by {TIMEOUT_HEADER} or the tenant's timeout_s).",
            ErrorCode.DEADLINE_EXCEEDED,
        )
