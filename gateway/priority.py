"""A request's priority: the tenant's setting, or the client's header within it."""

from __future__ import annotations

from .config import PRIORITIES, Priority
from .errors import ErrorCode, GatewayError

PRIORITY_HEADER = "x-inferwatch-priority"


def priority_of(header: str | None, tenant_default: Priority) -> Priority:
    """The header may ask for `batch` always, for `interactive` only where the tenant's own
    priority is interactive: a batch tenant cannot lift itself above the traffic it yields to."""
    if header is None:
        return tenant_default
    value = header.strip().lower()
    if value not in PRIORITIES:
        raise GatewayError(
            400,
            f"Invalid {PRIORITY_HEADER} header {header[:40]!r}: one of {', '.join(PRIORITIES)}.",
            ErrorCode.INVALID_PRIORITY,
            param=PRIORITY_HEADER,
        )
    if value == "interactive" and tenant_default == "batch":
        raise GatewayError(
            403,
            f"This tenant's priority is batch; {PRIORITY_HEADER}: interactive is not allowed.",
            ErrorCode.PRIORITY_NOT_ALLOWED,
            param=PRIORITY_HEADER,
        )
    return "interactive" if value == "interactive" else "batch"
