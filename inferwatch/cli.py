"""The `inferwatch` command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

app = typer.Typer(
    help="inferwatch: governed gateway, SLOs and canaries for LLM inference.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def main() -> None:
    """Subcommands keep the CLI shape stable as the platform grows."""


ConfigOpt = Annotated[
    Optional[Path], typer.Option("--config", "-c", help="YAML settings file (also INFERWATCH_CONFIG).")
]
DataDirOpt = Annotated[Optional[Path], typer.Option("--data-dir", help="Data directory (also INFERWATCH_DATA_DIR).")]


def _settings(config: Path | None, overrides: dict[str, Any]):
    from .settings import load_settings

    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return load_settings(config, clean)
    except (FileNotFoundError, ValueError) as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc


@app.command()
def worker(
    model: Annotated[
        Optional[Path], typer.Option(help="Local Hugging Face model folder; omit for the built-in demo model.")
    ] = None,
    alias: Annotated[Optional[str], typer.Option(help="Human name to serve the model as, e.g. mistral-7b@v3.")] = None,
    host: Annotated[Optional[str], typer.Option(help="Bind address.")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port.")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto, cpu, cuda, cuda:N.")] = None,
    device_map: Annotated[
        Optional[str], typer.Option("--device-map", help="'auto' spreads a large model over GPUs.")
    ] = None,
    dtype: Annotated[Optional[str], typer.Option(help="auto, bfloat16, float16, float32.")] = None,
    max_batch_size: Annotated[Optional[int], typer.Option(help="Sequences decoded together.")] = None,
    max_model_len: Annotated[Optional[int], typer.Option(help="Context length cap.")] = None,
    max_queue: Annotated[Optional[int], typer.Option(help="Waiting requests before 503.")] = None,
    fault_latency: Annotated[
        Optional[float], typer.Option(help="Fault injection: seconds added before the first token.")
    ] = None,
    fault_token_latency: Annotated[
        Optional[float], typer.Option(help="Fault injection: seconds added per output token.")
    ] = None,
    fault_error_rate: Annotated[
        Optional[float], typer.Option(help="Fault injection: fraction of requests failed with 500.")
    ] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Run an inference worker (OpenAI-compatible API with continuous batching)."""
    fault = {
        "extra_latency_s": fault_latency,
        "extra_token_latency_s": fault_token_latency,
        "error_rate": fault_error_rate,
    }
    worker_over = {
        "model": model,
        "alias": alias,
        "host": host,
        "port": port,
        "device": device,
        "device_map": device_map,
        "dtype": dtype,
        "max_batch_size": max_batch_size,
        "max_model_len": max_model_len,
        "max_queue": max_queue,
        "fault": {k: v for k, v in fault.items() if v is not None},
    }
    settings = _settings(
        config, {"data_dir": data_dir, "worker": {k: v for k, v in worker_over.items() if v is not None}}
    )
    from inference.serve import run

    run(settings.worker, settings.log_level)


@app.command()
def serve(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    host: Annotated[Optional[str], typer.Option(help="Gateway bind address.")] = None,
    port: Annotated[Optional[int], typer.Option(help="Gateway port.")] = None,
    model: Annotated[
        Optional[Path], typer.Option(help="Model folder for the co-located workers (default: demo model).")
    ] = None,
    workers: Annotated[Optional[int], typer.Option(help="Co-located workers (default: one per GPU, else one).")] = None,
) -> None:
    """Run the platform: gateway, ledger and co-located workers (the demo model by default)."""
    settings = _settings(
        config,
        {
            "data_dir": data_dir,
            "host": host,
            "port": port,
            "workers": workers,
            "worker": {"model": model} if model else None,
        },
    )
    from .serve import serve as run_serve

    run_serve(settings)


from alerts.cli import app as alerts_app  # noqa: E402 - sub-apps are mounted beside their commands

from safety import cli as safety_cli  # noqa: E402

app.add_typer(alerts_app, name="alerts")
app.add_typer(safety_cli.app, name="safety")
safety_cli.set_setup_factory(  # the review commands' ledger, from the platform's settings
    lambda config, data_dir: safety_cli.ReviewSetup(ledger_url=_settings(config, {"data_dir": data_dir}).ledger_url)
)
from slo.cli import SLOSetup  # noqa: E402
from slo.cli import app as slo_app  # noqa: E402
from slo.cli import set_setup_factory as set_slo_setup_factory  # noqa: E402

from alerts.validate import validate as slo_validate  # noqa: E402 - renders rules, so it lives in alerts

slo_app.command("validate")(slo_validate)
app.add_typer(slo_app, name="slo")


def _slo_setup(config: Path | None, data_dir: Path | None) -> SLOSetup:
    from .settings import load_settings

    settings = load_settings(config, {"data_dir": data_dir} if data_dir is not None else {})
    return SLOSetup(settings.ledger_url, settings.data_dir, list(settings.slo_specs), settings.slo_prometheus_url)


set_slo_setup_factory(_slo_setup)
from canary.cli import app as canary_app  # noqa: E402

app.add_typer(canary_app, name="canary")
from reports.cli import ReportSetup, set_setup_factory  # noqa: E402
from reports.cli import app as report_app  # noqa: E402

app.add_typer(report_app, name="report")


def _report_setup(config: Path | None, data_dir: Path | None) -> ReportSetup:
    from slo.spec import DEFAULTS_FILE

    from .report_inputs import report_inputs
    from .settings import load_settings

    settings = load_settings(config, {"data_dir": data_dir} if data_dir is not None else {})
    return ReportSetup(
        ledger_url=settings.ledger_url,
        data_dir=settings.data_dir,
        config=settings.reports,
        slo_specs=list(settings.slo_specs or [DEFAULTS_FILE]),
        inputs=lambda engine: report_inputs(engine, settings.gateway),
    )


set_setup_factory(_report_setup)
from dashboards.cli import app as dashboards_app  # noqa: E402

app.add_typer(dashboards_app, name="dashboards")

keys_app = typer.Typer(help="Tenant API keys (stored hashed; a new key is shown once).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _store(config: Path | None, data_dir: Path | None):
    from ledger.governance import GovernanceStore
    from ledger.db import create_engine_for, migrate

    settings = _settings(config, {"data_dir": data_dir})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine_for(settings.ledger_url)
    migrate(engine)
    return settings, GovernanceStore(engine)


def _gateway_store(config: Path | None, data_dir: Path | None):
    settings, store = _store(config, data_dir)
    return settings.gateway, store


from gateway.cli import audit_app, budgets_app, models_app, set_store_factory  # noqa: E402

set_store_factory(_gateway_store)
app.add_typer(models_app, name="models")
app.add_typer(audit_app, name="audit")
app.add_typer(budgets_app, name="budgets")

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="Tenant the key belongs to (created if missing).")],
    admin: Annotated[bool, typer.Option(help="An admin key.")] = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a key; it is printed once and only its hash is stored."""
    _, store = _store(config, data_dir)
    if store.tenant_settings(tenant) is None:
        store.upsert_tenant(tenant)
    new = store.create_key(tenant, is_admin=admin)
    if as_json:
        typer.echo(json.dumps({"key_id": new.key_id, "tenant": tenant, "admin": admin, "key": new.secret}))
    else:
        typer.echo(f"key {new.key_id} for tenant {tenant} (shown once):\n{new.secret}")


@keys_app.command("hash")
def keys_hash(key: Annotated[str, typer.Argument(help="A key made by `keys create`.")]) -> None:
    """Print the config entry for provisioning KEY from a file (its id and SHA-256, not the key)."""
    from ledger import keys as key_util

    key_id = key_util.key_id_of(key)
    if key_id is None:
        typer.secho("error: not an inferwatch key (iw-<12 hex>-<secret>)", fg="red", err=True)
        raise typer.Exit(2)
    typer.echo(f"{key_id}: {{tenant: TENANT, secret_sha256: {key_util.hash_secret(key)}}}")


@keys_app.command("list")
def keys_list(
    tenant: Annotated[Optional[str], typer.Option(help="Only this tenant.")] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List keys (ids only, never secrets)."""
    _, store = _store(config, data_dir)
    rows = [
        {
            "key_id": k.key_id,
            "tenant": k.tenant,
            "admin": k.is_admin,
            "revoked": k.revoked,
            "created_at": k.created_at.isoformat(),
        }
        for k in store.keys(tenant)
    ]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    _table(["key_id", "tenant", "admin", "revoked", "created_at"], rows)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id shown by `keys list`.")],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Revoke a key (gateways stop accepting it within their key cache TTL)."""
    _, store = _store(config, data_dir)
    if not store.revoke_key(key_id):
        typer.secho(f"error: no key with id {key_id}", fg="red", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


@app.command()
def usage(
    tenant: Annotated[Optional[str], typer.Option(help="One tenant (default: all).")] = None,
    days: Annotated[int, typer.Option(min=1, help="Days back from today (UTC).")] = 30,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Requests, tokens and cost by tenant, day and model, from the ledger."""
    from datetime import datetime, timedelta, timezone

    from sqlalchemy.orm import Session

    from ledger import queries

    settings, store = _store(config, data_dir)
    end = datetime.now(timezone.utc)
    with Session(store.engine) as s:
        rows = queries.usage(s, end - timedelta(days=days), end + timedelta(minutes=1), tenant=tenant)
    data = [
        {
            "tenant": r.tenant,
            "day": r.day.isoformat(),
            "model": r.alias,
            "model_version": r.model_version or "",
            "requests": r.requests,
            "prompt_tokens": r.prompt_tokens,
            "completion_tokens": r.completion_tokens,
            "cost_usd": round(r.cost_usd, 6),
        }
        for r in rows
    ]
    if as_json:
        typer.echo(json.dumps(data))
        return
    _table(
        ["tenant", "day", "model", "model_version", "requests", "prompt_tokens", "completion_tokens", "cost_usd"], data
    )


def _table(columns: list[str], rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(*columns)
    for r in rows:
        t.add_row(*(str(r[c]) for c in columns))
    Console().print(t)


if __name__ == "__main__":
    app()
