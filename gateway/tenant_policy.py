"""A tenant's settings as the data path applies them."""

from __future__ import annotations

from dataclasses import dataclass

from ledger.models import TenantSettings

from .budgets import tenant_budgets
from .config import Budget, GatewayConfig, Limits, Priority


@dataclass(frozen=True)
class TenantPolicy:
    limits: Limits
    store_content: bool = False
    cache: bool = False
    budgets: tuple[Budget, ...] = ()
    priority: Priority = "interactive"
    timeout_s: float | None = None  # default deadline of the tenant's requests


def policy_from(settings: TenantSettings, config: GatewayConfig) -> TenantPolicy:
    return TenantPolicy(
        limits=limits_from(settings, config.default_limits),
        store_content=settings.store_content,
        cache=settings.cache,
        budgets=tenant_budgets(settings, config),
        priority=settings.priority,
        timeout_s=settings.timeout_s,
    )


def limits_from(settings: TenantSettings, default: Limits) -> Limits:
    """The gateway's default limits with those the tenant set in their place."""
    own = settings.given(Limits.model_fields)
    return default.model_copy(update=own) if own else default
