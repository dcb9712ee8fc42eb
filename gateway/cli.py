"""`inferwatch models`, `inferwatch audit` and `inferwatch budgets`: the model registry, the
audit log and budget state, read and changed in the ledger database directly.

The composition root mounts the three typer apps and tells them how to open the database
with `set_store_factory` (this package does not import `inferwatch`).
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .config import GatewayConfig, VersionTarget, first_repeat
from ledger.governance import GovernanceStore

StoreFactory = Callable[[Optional[Path], Optional[Path]], "tuple[GatewayConfig, GovernanceStore]"]
_factory: StoreFactory | None = None

models_app = typer.Typer(
    help="The model registry: versions, and aliases with weighted targets and history.", no_args_is_help=True
)
audit_app = typer.Typer(help="The audit log of administrative and governance actions.", no_args_is_help=True)
budgets_app = typer.Typer(help="Tenant spend and token budgets, as the ledger counts them.", no_args_is_help=True)

ConfigOpt = Annotated[
    Optional[Path], typer.Option("--config", "-c", help="YAML settings file (also INFERWATCH_CONFIG).")
]
DataDirOpt = Annotated[Optional[Path], typer.Option("--data-dir", help="Data directory (also INFERWATCH_DATA_DIR).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@models_app.callback()
def _models() -> None:
    """Versions are immutable; an alias maps to weighted versions, and every change is kept."""


@audit_app.callback()
def _audit() -> None:
    """Every entry carries the hash of the one before it: `verify` detects tampering."""


@budgets_app.callback()
def _budgets() -> None:
    """Spend and token budgets per UTC day and calendar month."""


def set_store_factory(factory: StoreFactory) -> None:
    """How the commands open the database: (config file, data dir) -> (gateway config, store)."""
    global _factory
    _factory = factory


def _open(config: Path | None, data_dir: Path | None) -> tuple[GatewayConfig, GovernanceStore]:
    if _factory is None:
        raise RuntimeError("gateway.cli.set_store_factory was not called")
    return _factory(config, data_dir)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", fg="red", err=True)
    return typer.Exit(code)


def _table(columns: list[str], rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(*columns)
    for r in rows:
        t.add_row(*("" if r.get(c) is None else str(r.get(c)) for c in columns))
    Console().print(t)


def _targets_text(targets: list[dict[str, Any]]) -> str:
    return ", ".join(f"{t['version']}={t['weight']:g}" for t in targets)


# ---- models ----------------------------------------------------------------------------


@models_app.command("list")
def models_list(config: ConfigOpt = None, data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """Registered versions and the current alias mappings."""
    _, store = _open(config, data_dir)
    versions = list(store.versions().values())
    aliases = {a: [t.model_dump() for t in ts] for a, ts in sorted(store.aliases().items())}
    if as_json:
        typer.echo(json.dumps({"versions": versions, "aliases": aliases}))
        return
    _table(["version", "digest", "source", "created_at", "created_by", "notes"], versions)
    _table(["alias", "targets"], [{"alias": a, "targets": _targets_text(ts)} for a, ts in aliases.items()])


@models_app.command("register")
def models_register(
    version: Annotated[str, typer.Argument(help="Version id, e.g. mistral-7b-instruct@3f2a9c01b7d4.")],
    digest: Annotated[Optional[str], typer.Option(help="Content digest, sha256:<hex>.")] = None,
    source: Annotated[Optional[str], typer.Option(help="Model folder or upstream URL.")] = None,
    param: Annotated[
        Optional[list[str]], typer.Option("--param", help="KEY=VALUE (JSON values allowed); repeatable.")
    ] = None,
    notes: Annotated[Optional[str], typer.Option(help="Free text.")] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a version (immutable: registering it again with other metadata fails)."""
    parameters: dict[str, Any] = {}
    for p in param or []:
        k, sep, v = p.partition("=")
        if not sep or not k:
            raise _fail(f"--param {p!r}: expected KEY=VALUE", 2)
        try:
            parameters[k] = json.loads(v)
        except ValueError:
            parameters[k] = v
    _, store = _open(config, data_dir)
    try:
        out = store.register_version(
            version, digest=digest, source=source, parameters=parameters, notes=notes, actor=_actor()
        )
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(json.dumps(out) if as_json else f"registered {version}")


@models_app.command("alias")
def models_alias(
    name: Annotated[str, typer.Argument(help="The alias clients send as 'model'.")],
    target: Annotated[
        Optional[list[str]], typer.Option("--target", help="VERSION=WEIGHT (or VERSION for weight 1); repeatable.")
    ] = None,
    rollback: Annotated[bool, typer.Option("--rollback", help="Restore the mapping before the latest change.")] = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show an alias with its history, point it at weighted versions, or roll it back."""
    if target and rollback:
        raise _fail("use --target or --rollback, not both", 2)
    gw_config, store = _open(config, data_dir)
    if rollback:
        try:
            store.rollback_alias(name, actor=_actor())
        except LookupError as exc:
            raise _fail(str(exc)) from exc
    elif target:
        targets = []
        for t in target:
            version, _, weight = t.partition("=")
            try:
                targets.append(VersionTarget(version=version, weight=float(weight) if weight else 1.0))
            except ValueError as exc:
                raise _fail(f"--target {t!r}: expected VERSION=WEIGHT with a weight >= 0", 2) from exc
        repeat = first_repeat(targets, lambda t: t.version)
        if repeat is not None:
            raise _fail(f"version {repeat} appears twice in --target", 2)
        unknown = sorted({t.version for t in targets} - set(store.versions()) - set(gw_config.upstreams))
        if unknown:
            raise _fail(f"unknown version(s) {', '.join(unknown)}: register them first (inferwatch models register)")
        if sum(t.weight for t in targets) <= 0:
            raise _fail("at least one target needs a positive weight", 2)
        store.set_alias(name, targets, actor=_actor(), reason="cli")
    current = [t.model_dump() for t in store.aliases().get(name, [])]
    history = store.alias_history(name)
    if not current and not history:
        raise _fail(f"no alias {name!r}")
    if as_json:
        typer.echo(json.dumps({"alias": name, "targets": current, "history": history}))
        return
    typer.echo(f"{name} -> {_targets_text(current)}")
    _table(
        ["changed_at", "actor", "reason", "targets"], [{**h, "targets": _targets_text(h["targets"])} for h in history]
    )


# ---- audit -----------------------------------------------------------------------------


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _fail(f"not an ISO date or time: {value!r}", 2) from exc
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


@audit_app.command("list")
def audit_list(
    actor: Annotated[Optional[str], typer.Option(help="Key id, admin, config, system or cli:<user>.")] = None,
    action: Annotated[Optional[str], typer.Option(help="Action or prefix, e.g. alias. or rollout.")] = None,
    target: Annotated[Optional[str], typer.Option(help="Tenant, key id, alias, version, rollout id ...")] = None,
    since: Annotated[Optional[str], typer.Option(help="ISO time (UTC unless it says otherwise).")] = None,
    until: Annotated[Optional[str], typer.Option(help="ISO time, exclusive.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Audit entries, oldest first."""
    from ledger import audit

    _, store = _open(config, data_dir)
    rows = audit.entries(
        store.engine, actor=actor, action=action, target=target, since=_when(since), until=_when(until), limit=limit
    )
    if as_json:
        typer.echo(json.dumps(rows))
        return
    _table(
        ["seq", "at", "actor", "action", "target", "before", "after"],
        [
            {
                **r,
                "before": json.dumps(r["before"]) if r["before"] is not None else None,
                "after": json.dumps(r["after"]) if r["after"] is not None else None,
            }
            for r in rows
        ],
    )


@audit_app.command("verify")
def audit_verify(config: ConfigOpt = None, data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """Check the hash chain: exit 0 when intact, 1 when an entry was edited, removed or reordered."""
    from ledger import audit

    _, store = _open(config, data_dir)
    v = audit.verify(store.engine)
    if as_json:
        typer.echo(json.dumps(v.to_dict()))
    elif v.ok:
        typer.echo(f"audit log intact: {v.entries} entries")
    else:
        typer.secho(
            f"audit log tampered: entry {v.first_bad_seq}: {v.reason} ({v.entries} entries before it are intact)",
            fg="red",
        )
    raise typer.Exit(0 if v.ok else 1)


# ---- budgets ---------------------------------------------------------------------------


@budgets_app.command("list")
def budgets_list(
    tenant: Annotated[Optional[str], typer.Option(help="One tenant (default: all).")] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Each budget's use in its current period, from the ledger (what the bill counts)."""
    from .budgets import report

    gw_config, store = _open(config, data_dir)
    rows = report(store, gw_config, tenant, datetime.now(timezone.utc))
    if as_json:
        typer.echo(json.dumps(rows))
        return
    _table(["tenant", "key_id", "budget", "limit", "used", "used_ratio", "state", "resets_at"], rows)
