"""All configuration in one place: one YAML file plus INFERWATCH_* environment variables.

Precedence, highest first: command-line flags, environment (`INFERWATCH_WORKER__PORT=8002`),
the YAML file (`--config` or INFERWATCH_CONFIG), defaults. Each package owns the model of its
own section; this module only composes them.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, YamlConfigSettingsSource

from gateway.config import GatewayConfig
from inference.config import WorkerConfig
from reports.config import ReportsConfig
from safety.config import SafetyConfig

_config_file: ContextVar[str | None] = ContextVar("inferwatch_config_file", default=None)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INFERWATCH_", env_nested_delimiter="__", extra="forbid")

    data_dir: Path = Path("data")
    log_level: str = "info"
    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str | None = None  # default: SQLite in the data directory
    admin_key: str | None = None  # INFERWATCH_ADMIN_KEY, for automation
    default_tenant: str = "default"
    default_alias: str = "demo"
    workers: int | None = (
        None  # co-located workers to start when no upstreams are configured (default: one per GPU, else 1)
    )
    worker: WorkerConfig = WorkerConfig()
    gateway: GatewayConfig = GatewayConfig()
    safety: SafetyConfig = SafetyConfig()  # scanners and per-tenant policies (safety/config.py)
    slo_specs: list[Path] = []  # SLO spec files; empty: the shipped defaults (slo/defaults.yaml)
    slo_webhooks: list[str] = []  # Alertmanager-format webhooks for SLO alert state changes
    slo_eval_interval_s: float = 30.0
    slo_prometheus_url: str | None = None  # evaluates events/raw SLIs (PromQL on any metric); None: unsupported
    reports: ReportsConfig = ReportsConfig()  # weekly cost and safety review (reports/config.py)
    retention_days: int | None = 90  # raw request rows; minute rollups are kept
    ledger_batch_size: int = 500
    ledger_max_delay_s: float = 0.25

    @property
    def ledger_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'ledger.db').resolve()}"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_file = _config_file.get() or os.environ.get("INFERWATCH_CONFIG")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if yaml_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file))
        return tuple(sources)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_settings(config_file: Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Settings from the YAML file (if any), the environment, and `overrides` (CLI flags).

    Nested overrides are merged into the file's sections rather than replacing them.
    """
    if config_file is not None and not Path(config_file).is_file():
        raise FileNotFoundError(f"config file not found: {config_file}")
    token = _config_file.set(str(config_file) if config_file else None)
    try:
        base = Settings()
        settings = Settings.model_validate(_merge(base.model_dump(), overrides or {}))
    finally:
        _config_file.reset(token)
    if settings.worker.data_dir == Path("data"):  # the worker stores the demo model under the platform's data dir
        settings.worker.data_dir = settings.data_dir
    return settings
