"""A request's deadline: from the tenant's default timeout or the client's header, capped by
the gateway's request_timeout_s; passed on to the worker as the time it has left."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from .errors import GatewayError

TIMEOUT_HEADER = "x-inferwatch-timeout"  # seconds, as LiteLLM's x-litellm-timeout; the same name goes to the worker
MAX_TIMEOUT_S = 86_400.0


def requested_timeout(header: str | None) -> float | None:
    """The client's timeout in seconds, or None when it sent none; 400 naming the header otherwise."""
    if header is None:
        return None
    try:
        value = float(header)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 < value <= MAX_TIMEOUT_S:
        raise GatewayError(400, f"Invalid {TIMEOUT_HEADER} header {header[:40]!r}: a number of seconds, above 0 and "
                           f"at most {MAX_TIMEOUT_S:.0f}.", "invalid_timeout", param=TIMEOUT_HEADER,
                           error_type="invalid_request")
    return value


@dataclass(frozen=True)
class Deadline:
    """When the request must have been answered (time.monotonic), and the timeout it came from."""

    at: float
    timeout_s: float

    @classmethod
    def start(cls, header: str | None, tenant_default_s: float | None, cap_s: float,
              now: float | None = None) -> "Deadline":
        """The header wins over the tenant's default; neither may exceed the gateway's cap."""
        timeout = min(requested_timeout(header) or tenant_default_s or cap_s, cap_s)
        return cls((time.monotonic() if now is None else now) + timeout, timeout)

    def remaining(self, now: float | None = None) -> float:
        return max(0.0, self.at - (time.monotonic() if now is None else now))

    def expired(self, now: float | None = None) -> bool:
        return self.remaining(now) <= 0

    def header(self, now: float | None = None) -> dict[str, str]:
        """What the worker is told: the seconds left (a duration, so clocks need not agree)."""
        return {TIMEOUT_HEADER: f"{max(self.remaining(now), 0.001):.3f}"}

    def error(self) -> GatewayError:
        return GatewayError(504, f"The request's deadline of {self.timeout_s:g} s passed before it was answered "
                            f"(set by {TIMEOUT_HEADER} or the tenant's timeout_s).", "deadline_exceeded",
                            error_type="deadline_exceeded")
