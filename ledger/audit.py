"""The audit log: an append-only hash chain of administrative and governance actions.

Each entry's hash is sha256 over the canonical JSON of its content plus the previous entry's
hash, so editing, deleting or reordering any entry breaks the chain from there on
(`verify`). Appenders first bump the single `audit_head` row, which locks it (a row lock on
PostgreSQL, the write lock on SQLite): the chain stays linear with many gateway replicas.
`append` runs in the caller's transaction, so an action and its entry commit together.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, select, update
from sqlalchemy.orm import Session

from ledger.models import AuditEntry, AuditHead

GENESIS = "0" * 64
# a mapped class's __table__ is typed FromClause; a declarative model's is a Table
HEAD = cast(Table, AuditHead.__table__)
LOG = cast(Table, AuditEntry.__table__)


def _jsonable(value: Any) -> Any:
    """What a JSON column gives back, so the hash computed now is the one verified later."""
    return None if value is None else json.loads(json.dumps(value, default=str))


def _iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat()


def entry_hash(
    seq: int, at: datetime, actor: str, action: str, target: str | None, before: Any, after: Any, prev_hash: str
) -> str:
    content = {
        "seq": seq,
        "at": _iso(at),
        "actor": actor,
        "action": action,
        "target": target,
        "before": before,
        "after": after,
        "prev_hash": prev_hash,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def append(
    conn: Connection | Session,
    *,
    actor: str,
    action: str,
    target: str | None = None,
    before: Any = None,
    after: Any = None,
    at: datetime | None = None,
) -> int:
    """Add one entry in the caller's transaction; returns its sequence number."""
    row = conn.execute(
        update(HEAD).where(HEAD.c.id == 1).values(seq=HEAD.c.seq + 1).returning(HEAD.c.seq, HEAD.c.hash)
    ).one()
    seq, prev_hash = int(row[0]), str(row[1])
    at = (at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    before, after = _jsonable(before), _jsonable(after)
    digest = entry_hash(seq, at, actor, action, target, before, after, prev_hash)
    conn.execute(
        LOG.insert().values(
            seq=seq,
            at=at,
            actor=actor,
            action=action,
            target=target,
            before=before,
            after=after,
            prev_hash=prev_hash,
            hash=digest,
        )
    )
    conn.execute(update(HEAD).where(HEAD.c.id == 1).values(hash=digest))
    return seq


def record(engine: Engine, **entry: Any) -> int:
    """`append` in a transaction of its own."""
    with engine.begin() as conn:
        return append(conn, **entry)


def to_dict(e: AuditEntry) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "at": _iso(e.at),
        "actor": e.actor,
        "action": e.action,
        "target": e.target,
        "before": e.before,
        "after": e.after,
        "prev_hash": e.prev_hash,
        "hash": e.hash,
    }


def entries(
    engine: Engine,
    *,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    after_seq: int = 0,
) -> list[dict[str, Any]]:
    """Entries oldest first; `action` matches a prefix ("rollout." is every rollout action)."""
    stmt = select(AuditEntry).where(AuditEntry.seq > after_seq).order_by(AuditEntry.seq).limit(limit)
    if actor is not None:
        stmt = stmt.where(AuditEntry.actor == actor)
    if action is not None:
        stmt = stmt.where(AuditEntry.action.startswith(action, autoescape=True))
    if target is not None:
        stmt = stmt.where(AuditEntry.target == target)
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEntry.at < until)
    with Session(engine) as s:
        return [to_dict(e) for e in s.scalars(stmt)]


@dataclass(frozen=True)
class Verification:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "first_bad_seq": self.first_bad_seq, "reason": self.reason}


def verify(engine: Engine, batch: int = 1000) -> Verification:
    """Walk the chain from the first entry; the first entry that does not fit is named."""
    prev_hash, expected_seq, last_seq = GENESIS, 1, 0
    with Session(engine) as s:
        while True:
            rows = list(
                s.scalars(select(AuditEntry).where(AuditEntry.seq > last_seq).order_by(AuditEntry.seq).limit(batch))
            )
            if not rows:
                break
            for e in rows:
                if e.seq != expected_seq:
                    return Verification(False, expected_seq - 1, expected_seq, f"entry {expected_seq} is missing")
                if e.prev_hash != prev_hash:
                    return Verification(False, e.seq - 1, e.seq, "its previous hash does not match the entry before it")
                if entry_hash(e.seq, e.at, e.actor, e.action, e.target, e.before, e.after, e.prev_hash) != e.hash:
                    return Verification(False, e.seq - 1, e.seq, "its content does not match its hash (edited)")
                prev_hash, expected_seq, last_seq = e.hash, e.seq + 1, e.seq
            s.expunge_all()
        head = s.get(AuditHead, 1)
    if head is None or head.seq != last_seq or head.hash != prev_hash:
        bad = last_seq + 1 if head is None or head.seq > last_seq else last_seq
        return Verification(False, last_seq, bad, "the chain's head does not match its last entry (entries removed)")
    return Verification(True, last_seq)


def record_if_changed(engine: Engine, *, action: str, target: str, state: Any, actor: str = "config") -> bool:
    """Audit a configuration loaded at startup (SLO specs, ...) when its digest differs from
    the last one audited under `action` and `target`; True when an entry was added."""
    after = _jsonable(state)
    digest = hashlib.sha256(json.dumps(after, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    with Session(engine) as s:
        last = s.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == action, AuditEntry.target == target)
            .order_by(AuditEntry.seq.desc())
            .limit(1)
        ).first()
    before = last.after if last is not None else None
    if before is not None and before.get("digest") == digest:
        return False
    record(
        engine,
        actor=actor,
        action=action,
        target=target,
        before=None if before is None else {"digest": before.get("digest")},
        after={"digest": digest, "state": after},
    )
    return True
