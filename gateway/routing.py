"""Alias -> weighted model versions, with sticky assignment by request id."""

from __future__ import annotations

import hashlib
import random

from .config import VersionTarget


class AliasTable:
    """The weights every replica routes by. Refreshed from the database, so a rollout that
    changes weights is seen by all gateway replicas."""

    def __init__(self, aliases: dict[str, list[VersionTarget]]) -> None:
        self.aliases = {a: [t for t in ts if t.weight > 0] for a, ts in aliases.items()}

    def replace(self, aliases: dict[str, list[VersionTarget]]) -> None:
        self.aliases = {a: [t for t in ts if t.weight > 0] for a, ts in aliases.items()}

    def __contains__(self, alias: str) -> bool:
        return alias in self.aliases

    def choose(self, alias: str, sticky_key: str | None = None, exclude: frozenset[str] = frozenset()) -> str | None:
        """A version for `alias`, weighted; the same sticky key always gets the same version
        while the weights stay the same."""
        targets = [t for t in self.aliases.get(alias, []) if t.version not in exclude]
        total = sum(t.weight for t in targets)
        if total <= 0:
            return None
        if sticky_key:
            digest = hashlib.blake2b(f"{alias}\0{sticky_key}".encode(), digest_size=8).digest()
            point = int.from_bytes(digest, "big") / 2**64 * total
        else:
            point = random.random() * total
        for t in targets:
            point -= t.weight
            if point < 0:
                return t.version
        return targets[-1].version
