"""Governance state shared by all gateway replicas, kept in the ledger database:
tenants and their settings, API keys (hashes only), alias weights."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from ledger.models import ApiKey, ModelAlias, Tenant

from . import keys
from .config import GatewayConfig, Limits, VersionTarget


@dataclass(frozen=True)
class KeyRow:
    key_id: str
    tenant: str
    secret_sha256: str
    is_admin: bool
    revoked: bool
    created_at: datetime


def _now() -> datetime:
    return datetime.now(timezone.utc)


class GovernanceStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ---- tenants -----------------------------------------------------------------------
    def upsert_tenant(self, tenant_id: str, name: str | None = None, settings: dict[str, Any] | None = None) -> None:
        with Session(self.engine) as s, s.begin():
            row = s.get(Tenant, tenant_id)
            if row is None:
                s.add(Tenant(id=tenant_id, name=name or tenant_id, settings=settings or {}))
            else:
                if name:
                    row.name = name
                if settings is not None:
                    row.settings = dict(settings)

    def tenants(self) -> list[dict[str, Any]]:
        with Session(self.engine) as s:
            return [{"id": t.id, "name": t.name, "created_at": t.created_at.isoformat(), "settings": t.settings}
                    for t in s.scalars(select(Tenant).order_by(Tenant.id))]

    def tenant_settings(self, tenant_id: str) -> dict[str, Any] | None:
        with Session(self.engine) as s:
            row = s.get(Tenant, tenant_id)
            return None if row is None else dict(row.settings)

    # ---- keys --------------------------------------------------------------------------
    def create_key(self, tenant_id: str, is_admin: bool = False) -> keys.NewKey:
        new = keys.generate()
        with Session(self.engine) as s, s.begin():
            if s.get(Tenant, tenant_id) is None:
                raise LookupError(f"tenant {tenant_id!r} does not exist")
            s.add(ApiKey(key_id=new.key_id, tenant=tenant_id, secret_sha256=new.secret_hash, is_admin=is_admin))
        return new

    def key(self, key_id: str) -> KeyRow | None:
        with Session(self.engine) as s:
            k = s.get(ApiKey, key_id)
            return None if k is None else KeyRow(k.key_id, k.tenant, k.secret_sha256, k.is_admin, k.revoked_at is not None, k.created_at)

    def keys(self, tenant_id: str | None = None) -> list[KeyRow]:
        with Session(self.engine) as s:
            stmt = select(ApiKey).order_by(ApiKey.created_at)
            if tenant_id:
                stmt = stmt.where(ApiKey.tenant == tenant_id)
            return [KeyRow(k.key_id, k.tenant, k.secret_sha256, k.is_admin, k.revoked_at is not None, k.created_at) for k in s.scalars(stmt)]

    def revoke_key(self, key_id: str) -> bool:
        with Session(self.engine) as s, s.begin():
            k = s.get(ApiKey, key_id)
            if k is None:
                return False
            if k.revoked_at is None:
                k.revoked_at = _now()
            return True

    # ---- aliases -----------------------------------------------------------------------
    def aliases(self) -> dict[str, list[VersionTarget]]:
        out: dict[str, list[VersionTarget]] = {}
        with Session(self.engine) as s:
            for row in s.scalars(select(ModelAlias).order_by(ModelAlias.alias, ModelAlias.model_version)):
                out.setdefault(row.alias, []).append(VersionTarget(version=row.model_version, weight=row.weight))
        return out

    def set_alias(self, alias: str, targets: list[VersionTarget]) -> None:
        with Session(self.engine) as s, s.begin():
            s.execute(delete(ModelAlias).where(ModelAlias.alias == alias))
            for t in targets:
                s.add(ModelAlias(alias=alias, model_version=t.version, weight=t.weight))

    def seed(self, config: GatewayConfig) -> None:
        """Make the database hold the configured tenants, and alias weights for aliases it
        does not know yet (weights a rollout set survive a restart)."""
        for tenant_id, t in config.tenants.items():
            settings = {"store_content": t.store_content}
            if t.limits:
                settings.update(t.limits.model_dump())
            self.upsert_tenant(tenant_id, t.name, settings)
        for key_id, k in config.keys.items():
            if self.tenant_settings(k.tenant) is None:
                self.upsert_tenant(k.tenant)
            with Session(self.engine) as s, s.begin():
                if s.get(ApiKey, key_id) is None:  # a revocation in the database outlives the file
                    s.add(ApiKey(key_id=key_id, tenant=k.tenant, secret_sha256=k.secret_sha256, is_admin=k.admin))
        known = self.aliases()
        for alias, targets in config.aliases.items():
            if alias not in known:
                self.set_alias(alias, targets)


def limits_from(settings: dict[str, Any] | None, default: Limits) -> Limits:
    if not settings:
        return default
    return default.model_copy(update={k: settings[k] for k in Limits.model_fields if k in settings})
