"""The web console: server-rendered pages over the ledger, the SLO states, canaries, the
review queue and the reports, at `/` and `/ui/...` of the gateway's app."""

from console.deps import ConsoleDeps
from console.router import build_console_router

__all__ = ["ConsoleDeps", "build_console_router"]
