"""A tenant's settings as the data path applies them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .budgets import tenant_budgets
from .config import Budget, GatewayConfig, Limits
from .state import limits_from


@dataclass(frozen=True)
class TenantPolicy:
    limits: Limits
    store_content: bool = False
    cache: bool = False
    budgets: tuple[Budget, ...] = ()


def policy_from(settings: dict[str, Any] | None, config: GatewayConfig) -> TenantPolicy:
    settings = settings or {}
    return TenantPolicy(limits=limits_from(settings, config.default_limits),
                        store_content=bool(settings.get("store_content", False)),
                        cache=bool(settings.get("cache", False)), budgets=tenant_budgets(settings, config))
