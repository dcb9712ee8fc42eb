"""One request on its way through the gateway's stages (as vLLM's `ServeContext`): what each
stage found out, handed to the next and, at the end, to the record."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .auth import Principal
from .operations import Operation
from .config import Priority
from .deadline import Deadline
from .outcome import Outcome
from .tenant_policy import TenantPolicy


@dataclass(eq=False)
class RequestContext:
    operation: Operation
    request_id: str  # always ours: a client reusing its id must not collide in the ledger
    sticky: str | None  # the client's x-request-id, which keeps its routing sticky
    started_at: datetime
    t0: float  # perf_counter at arrival: latency, TTFT and TPOT are measured from here
    principal: Principal
    outcome: Outcome = field(default_factory=Outcome)
    policy: TenantPolicy | None = None  # admission
    req: Any = None  # the validated request model (parse)
    alias: str = ""  # the model the client named, once it is known to exist (admission)
    prompt_estimate: int = 0  # prompt tokens estimated from the text (admission)
    headers: dict[str, str] = field(default_factory=dict)  # rate-limit and cache headers of the response
    span: Any = None  # the request's span, from admission on
    version: str | None = None  # the model version it is routed to
    cache_key: str | None = None  # set when the response cache was consulted
    priority: Priority = "interactive"  # admission: the tenant's, or the client's header within it
    deadline: Deadline | None = None  # admission: when the client must have been answered

    def deadline_passed(self) -> bool:
        return self.deadline is not None and self.deadline.expired()

    @property
    def tenant(self) -> str:
        return self.principal.tenant or "admin"

    @property
    def stream(self) -> bool:
        return bool(getattr(self.req, "stream", False))
