"""The gateway's configuration written into the governance state at start-up."""

from __future__ import annotations

from typing import Any

from ledger.governance import GovernanceStore

from .config import GatewayConfig


def seed(store: GovernanceStore, config: GatewayConfig) -> None:
    """Make the database hold the configured tenants and keys, every upstream version in the
    registry, and alias weights for aliases it does not know yet (weights a rollout set
    survive a restart). Changes are audited with the actor "config"."""
    for tenant_id, t in config.tenants.items():
        settings: dict[str, Any] = {
            "store_content": t.store_content,
            "cache": t.cache,
            "priority": t.priority,
            "timeout_s": t.timeout_s,
        }
        if t.limits:
            settings.update(t.limits.model_dump())
        if t.budgets is not None:
            settings["budgets"] = [b.model_dump() for b in t.budgets]
        store.upsert_tenant(tenant_id, t.name, settings, actor="config")
    for key_id, k in config.keys.items():
        if store.tenant_settings(k.tenant) is None:
            store.upsert_tenant(k.tenant, actor="config")
        store.provision_key(key_id, k.tenant, k.secret_sha256, is_admin=k.admin, actor="config")
    registered = store.versions()
    for version, up in config.upstreams.items():
        if version not in registered:
            store.register_version(
                version, source=",".join(up.urls), notes="from the gateway configuration", actor="config"
            )
    known = store.aliases()
    for alias, targets in config.aliases.items():
        if alias not in known:
            store.set_alias(alias, targets, actor="config", reason="configured")
