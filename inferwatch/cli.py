"""The `inferwatch` command line."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

app = typer.Typer(help="inferwatch: governed gateway, SLOs and canaries for LLM inference.", no_args_is_help=True,
                  add_completion=False, context_settings={"help_option_names": ["-h", "--help"]})


@app.callback()
def main() -> None:
    """Subcommands keep the CLI shape stable as the platform grows."""

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML settings file (also INFERWATCH_CONFIG).")]
DataDirOpt = Annotated[Optional[Path], typer.Option("--data-dir", help="Data directory (also INFERWATCH_DATA_DIR).")]


def _settings(config: Path | None, overrides: dict[str, Any]):  # noqa: ANN202
    from .settings import load_settings

    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return load_settings(config, clean)
    except (FileNotFoundError, ValueError) as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc


@app.command()
def worker(
    model: Annotated[Optional[Path], typer.Option(help="Local Hugging Face model folder; omit for the built-in demo model.")] = None,
    alias: Annotated[Optional[str], typer.Option(help="Human name to serve the model as, e.g. mistral-7b@v3.")] = None,
    host: Annotated[Optional[str], typer.Option(help="Bind address.")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port.")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto, cpu, cuda, cuda:N.")] = None,
    device_map: Annotated[Optional[str], typer.Option("--device-map", help="'auto' spreads a large model over GPUs.")] = None,
    dtype: Annotated[Optional[str], typer.Option(help="auto, bfloat16, float16, float32.")] = None,
    max_batch_size: Annotated[Optional[int], typer.Option(help="Sequences decoded together.")] = None,
    max_model_len: Annotated[Optional[int], typer.Option(help="Context length cap.")] = None,
    max_queue: Annotated[Optional[int], typer.Option(help="Waiting requests before 503.")] = None,
    fault_latency: Annotated[Optional[float], typer.Option(help="Fault injection: seconds added before the first token.")] = None,
    fault_token_latency: Annotated[Optional[float], typer.Option(help="Fault injection: seconds added per output token.")] = None,
    fault_error_rate: Annotated[Optional[float], typer.Option(help="Fault injection: fraction of requests failed with 500.")] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Run an inference worker (OpenAI-compatible API with continuous batching)."""
    fault = {"extra_latency_s": fault_latency, "extra_token_latency_s": fault_token_latency, "error_rate": fault_error_rate}
    worker_over = {"model": model, "alias": alias, "host": host, "port": port, "device": device, "device_map": device_map,
                   "dtype": dtype, "max_batch_size": max_batch_size, "max_model_len": max_model_len, "max_queue": max_queue,
                   "fault": {k: v for k, v in fault.items() if v is not None}}
    settings = _settings(config, {"data_dir": data_dir, "worker": {k: v for k, v in worker_over.items() if v is not None}})
    from inference.serve import run

    run(settings.worker, settings.log_level)


if __name__ == "__main__":
    app()
