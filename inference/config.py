"""Worker configuration. Standalone (the worker imports nothing else of ours); the
composition root embeds it in the platform settings as the `worker` section."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class FaultInjection(BaseModel):
    """Deliberate slowness and errors for canary and SLO tests. Off by default."""

    extra_latency_s: float = Field(default=0.0, ge=0.0, description="added before the first token")
    extra_token_latency_s: float = Field(
        default=0.0, ge=0.0, description="added to every decode step, as a slower GPU would"
    )
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0, description="fraction of requests answered 500")
    fail_after_tokens: int = Field(
        default=0, ge=0, description="fail each generation as an engine error once it has this many tokens; 0: never"
    )


class WorkerConfig(BaseModel):
    model: Path | None = Field(default=None, description="local Hugging Face folder; None serves the demo model")
    alias: str | None = Field(default=None, description="human name served as `model`, e.g. mistral-7b@v3")
    data_dir: Path = Path("data")
    device: str = Field(default="auto", description="auto, cpu, cuda, cuda:N")
    device_map: str | None = Field(default=None, description="'auto' spreads a large model over GPUs")
    dtype: str = Field(default="auto", description="auto (bf16 on CUDA, fp32 on CPU), bfloat16, float16, float32")
    host: str = "127.0.0.1"
    port: int = 8001
    max_batch_size: int = Field(default=64, ge=1)
    max_model_len: int | None = Field(
        default=None,
        description="context length; default the model's. The KV cache holds as many sequences of it "
        "(up to max_batch_size) as free memory allows",
    )
    max_queue: int = Field(default=256, ge=0, description="waiting requests before 503")
    default_max_tokens: int = Field(default=256, ge=1)
    prefill_token_budget: int = Field(
        default=2048,
        ge=1,
        description="prompt tokens read per engine step (longer prompts in chunks): bounds a decode stall",
    )
    compile: bool = Field(default=False, description="torch.compile each decoder layer (dynamic shapes)")
    fuse_projections: bool = Field(default=True, description="one matmul for q/k/v and one for gate/up per layer")
    async_output: bool = Field(
        default=True, description="launch decode step N+1 before the host has processed step N's tokens"
    )
    cuda_graphs: bool = Field(
        default=True, description="replay decode steps as CUDA graphs captured at warm-up (CUDA only)"
    )
    fault: FaultInjection = FaultInjection()
