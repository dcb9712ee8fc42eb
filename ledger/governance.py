"""Governance state shared by the gateway replicas and the canary controller, kept in the
ledger database: tenants and their settings, API keys (hashes only), the model registry
(versions, alias weights and their history). Every change is written to the audit log in its
transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from . import audit, keys
from .models import ApiKey, ModelAlias, ModelAliasChange, ModelVersion, Tenant


class VersionTarget(BaseModel):
    """One model version behind an alias, with its share of the alias's traffic."""

    version: str
    weight: float = Field(default=1.0, ge=0.0)


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
    def upsert_tenant(
        self, tenant_id: str, name: str | None = None, settings: dict[str, Any] | None = None, *, actor: str = "system"
    ) -> None:
        with Session(self.engine) as s, s.begin():
            row = s.get(Tenant, tenant_id)
            if row is None:
                row = Tenant(id=tenant_id, name=name or tenant_id, settings=settings or {})
                s.add(row)
                s.flush()
                audit.append(
                    s,
                    actor=actor,
                    action="tenant.create",
                    target=tenant_id,
                    after={"name": row.name, "settings": row.settings},
                )
                return
            before = {"name": row.name, "settings": dict(row.settings)}
            if name:
                row.name = name
            if settings is not None:
                row.settings = dict(settings)
            after = {"name": row.name, "settings": dict(row.settings)}
            if after != before:
                s.flush()
                audit.append(s, actor=actor, action="tenant.update", target=tenant_id, before=before, after=after)

    def update_tenant_settings(
        self, tenant_id: str, changes: dict[str, Any], *, actor: str = "system"
    ) -> dict[str, Any]:
        """Merge `changes` into a tenant's settings; returns the new settings."""
        current = self.tenant_settings(tenant_id)
        if current is None:
            raise LookupError(f"tenant {tenant_id!r} does not exist")
        merged = {**current, **changes}
        self.upsert_tenant(tenant_id, settings=merged, actor=actor)
        return merged

    def tenants(self) -> list[dict[str, Any]]:
        with Session(self.engine) as s:
            return [
                {"id": t.id, "name": t.name, "created_at": t.created_at.isoformat(), "settings": t.settings}
                for t in s.scalars(select(Tenant).order_by(Tenant.id))
            ]

    def tenant_settings(self, tenant_id: str) -> dict[str, Any] | None:
        with Session(self.engine) as s:
            row = s.get(Tenant, tenant_id)
            return None if row is None else dict(row.settings)

    # ---- keys --------------------------------------------------------------------------
    def create_key(self, tenant_id: str, *, is_admin: bool = False, actor: str = "system") -> keys.NewKey:
        new = keys.generate()
        with Session(self.engine) as s, s.begin():
            if s.get(Tenant, tenant_id) is None:
                raise LookupError(f"tenant {tenant_id!r} does not exist")
            s.add(ApiKey(key_id=new.key_id, tenant=tenant_id, secret_sha256=new.secret_hash, is_admin=is_admin))
            s.flush()
            audit.append(
                s, actor=actor, action="key.create", target=new.key_id, after={"tenant": tenant_id, "admin": is_admin}
            )
        return new

    def key(self, key_id: str) -> KeyRow | None:
        with Session(self.engine) as s:
            k = s.get(ApiKey, key_id)
            return (
                None
                if k is None
                else KeyRow(k.key_id, k.tenant, k.secret_sha256, k.is_admin, k.revoked_at is not None, k.created_at)
            )

    def keys(self, tenant_id: str | None = None) -> list[KeyRow]:
        with Session(self.engine) as s:
            stmt = select(ApiKey).order_by(ApiKey.created_at)
            if tenant_id:
                stmt = stmt.where(ApiKey.tenant == tenant_id)
            return [
                KeyRow(k.key_id, k.tenant, k.secret_sha256, k.is_admin, k.revoked_at is not None, k.created_at)
                for k in s.scalars(stmt)
            ]

    def provision_key(
        self, key_id: str, tenant_id: str, secret_sha256: str, *, is_admin: bool = False, actor: str = "system"
    ) -> bool:
        """Add a key whose hash is known (from configuration) unless its id exists: a
        revocation in the database outlives the file. True when it was added."""
        with Session(self.engine) as s, s.begin():
            if s.get(ApiKey, key_id) is not None:
                return False
            s.add(ApiKey(key_id=key_id, tenant=tenant_id, secret_sha256=secret_sha256, is_admin=is_admin))
            s.flush()
            audit.append(
                s, actor=actor, action="key.create", target=key_id, after={"tenant": tenant_id, "admin": is_admin}
            )
            return True

    def revoke_key(self, key_id: str, *, actor: str = "system") -> bool:
        with Session(self.engine) as s, s.begin():
            k = s.get(ApiKey, key_id)
            if k is None:
                return False
            if k.revoked_at is None:
                k.revoked_at = _now()
                s.flush()
                audit.append(
                    s,
                    actor=actor,
                    action="key.revoke",
                    target=key_id,
                    before={"revoked": False},
                    after={"revoked": True, "tenant": k.tenant},
                )
            return True

    # ---- aliases -----------------------------------------------------------------------
    def aliases(self) -> dict[str, list[VersionTarget]]:
        out: dict[str, list[VersionTarget]] = {}
        with Session(self.engine) as s:
            for row in s.scalars(select(ModelAlias).order_by(ModelAlias.alias, ModelAlias.model_version)):
                out.setdefault(row.alias, []).append(VersionTarget(version=row.model_version, weight=row.weight))
        return out

    def set_alias(
        self, alias: str, targets: list[VersionTarget], *, actor: str = "system", reason: str | None = None
    ) -> None:
        """Replace an alias's weighted targets; the change goes to its history and the audit log."""
        after = [{"version": t.version, "weight": t.weight} for t in targets]
        with Session(self.engine) as s, s.begin():
            # delete first: on SQLite the first statement takes the write lock, so the
            # mapping read below is the one this transaction replaces
            s.execute(delete(ModelAlias).where(ModelAlias.alias == alias))
            last = s.scalars(
                select(ModelAliasChange)
                .where(ModelAliasChange.alias == alias)
                .order_by(ModelAliasChange.id.desc())
                .limit(1)
            ).first()
            before = last.targets if last is not None else None
            for t in targets:
                s.add(ModelAlias(alias=alias, model_version=t.version, weight=t.weight))
            s.add(ModelAliasChange(alias=alias, targets=after, changed_at=_now(), actor=actor, reason=reason))
            s.flush()
            audit.append(
                s,
                actor=actor,
                action="alias.rollback" if reason == "rollback" else "alias.set",
                target=alias,
                before=before,
                after=after,
            )

    def alias_history(self, alias: str, limit: int = 50) -> list[dict[str, Any]]:
        """Mappings an alias has had, newest first."""
        with Session(self.engine) as s:
            rows = s.scalars(
                select(ModelAliasChange)
                .where(ModelAliasChange.alias == alias)
                .order_by(ModelAliasChange.id.desc())
                .limit(limit)
            )
            return [
                {
                    "id": r.id,
                    "targets": r.targets,
                    "changed_at": r.changed_at.isoformat(),
                    "actor": r.actor,
                    "reason": r.reason,
                }
                for r in rows
            ]

    def rollback_alias(self, alias: str, *, actor: str = "system") -> list[VersionTarget]:
        """Restore the mapping the alias had before its latest change; returns it."""
        history = self.alias_history(alias, limit=2)
        if len(history) < 2:
            raise LookupError(f"alias {alias!r} has no earlier mapping to roll back to")
        previous = [VersionTarget(**t) for t in history[1]["targets"]]
        self.set_alias(alias, previous, actor=actor, reason="rollback")
        return previous

    # ---- model versions ----------------------------------------------------------------
    def register_version(
        self,
        version: str,
        *,
        digest: str | None = None,
        source: str | None = None,
        parameters: dict[str, Any] | None = None,
        notes: str | None = None,
        actor: str = "system",
    ) -> dict[str, Any]:
        """Register a version. Its metadata is immutable: registering it again may fill in what
        is missing (a configured upstream is registered without a digest), but changing what
        is set is refused with ValueError."""
        with Session(self.engine) as s, s.begin():
            row = s.get(ModelVersion, version)
            wanted = {"digest": digest, "source": source, "parameters": parameters or {}, "notes": notes}
            if row is not None:
                have = _version_dict(row)
                given = {k: v for k, v in wanted.items() if v not in (None, {})}
                if any(have[k] not in (None, {}) and have[k] != v for k, v in given.items() if k != "notes"):
                    raise ValueError(
                        f"version {version!r} is registered with other metadata; a version is immutable, "
                        "register a new one"
                    )
                missing = {k: v for k, v in given.items() if have[k] in (None, {})}
                if not missing:
                    return have
                for k, v in missing.items():
                    setattr(row, k, v)
                s.flush()
                out = _version_dict(row)
                audit.append(s, actor=actor, action="model.complete", target=version, before=have, after=out)
                return out
            row = ModelVersion(version=version, created_at=_now(), created_by=actor, **wanted)
            s.add(row)
            s.flush()
            out = _version_dict(row)
            audit.append(s, actor=actor, action="model.register", target=version, after=out)
            return out

    def versions(self) -> dict[str, dict[str, Any]]:
        with Session(self.engine) as s:
            return {r.version: _version_dict(r) for r in s.scalars(select(ModelVersion).order_by(ModelVersion.version))}


def _version_dict(r: ModelVersion) -> dict[str, Any]:
    return {
        "version": r.version,
        "digest": r.digest,
        "source": r.source,
        "parameters": dict(r.parameters or {}),
        "notes": r.notes,
        "created_at": r.created_at.isoformat(),
        "created_by": r.created_by,
    }
