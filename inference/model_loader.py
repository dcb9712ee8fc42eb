"""Load a local Hugging Face causal LM and derive its immutable, content-based version."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("inferwatch.worker")

# Files that define what a model computes. README, images and training logs do not.
_CONTENT_SUFFIXES = (".safetensors", ".bin", ".json", ".model", ".jinja", ".txt", ".tiktoken")
_IGNORED = {"inferwatch-digest.json"}


@dataclass(frozen=True)
class ModelVersion:
    digest: str  # sha256 over weights, tokenizer and config
    alias: str  # human name, e.g. mistral-7b-instruct@v3

    @property
    def id(self) -> str:
        return f"{self.alias}@{self.digest[:12]}"


def _content_files(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_file() and p.suffix in _CONTENT_SUFFIXES and p.name not in _IGNORED)


def content_digest(path: Path) -> str:
    """sha256 over (name, size, bytes) of every content file, cached by (name, size, mtime).

    Hashing 15 GB of weights takes tens of seconds; the cache makes restarts cheap while any
    change to a file (new mtime or size) forces a fresh digest.
    """
    path = Path(path)
    files = _content_files(path)
    stamp = [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files]
    cache = path / "inferwatch-digest.json"
    try:
        cached = json.loads(cache.read_text())
        if cached.get("stamp") == stamp:
            return cached["digest"]
    except (OSError, ValueError):
        pass
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.name}\0{f.stat().st_size}\0".encode())
        with f.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    digest = h.hexdigest()
    try:
        cache.write_text(json.dumps({"stamp": stamp, "digest": digest}))
    except OSError:
        pass  # read-only model folders are fine; we just hash again next time
    return digest


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    version: ModelVersion
    device: Any
    dtype: Any
    max_model_len: int
    path: Path


def _has_accelerate() -> bool:
    import importlib.util

    return importlib.util.find_spec("accelerate") is not None


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)


def load_model(
    path: Path,
    *,
    alias: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    device_map: str | None = None,
    max_model_len: int | None = None,
    fuse: bool = True,
) -> LoadedModel:
    """Load model and tokenizer from a local folder; never touches the network. With `fuse`, q/k/v and
    gate/up become one matmul each (`fusion.fuse_projections`)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from . import attention, fusion

    attention.register()
    path = Path(path)
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path} is not a Hugging Face model folder (no config.json)")
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    t0 = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "local_files_only": True, "attn_implementation": attention.NAME}
    if device_map:
        kwargs["device_map"] = device_map
    elif dev != "cpu" and _has_accelerate():
        kwargs["device_map"] = dev  # weights go straight to the GPU, never staged in host memory
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if "device_map" not in kwargs:
        # transformers declares `to` with @wraps(nn.Module.to), so its stubs take the device for `self`
        model.to(dev)  # type: ignore[arg-type]
    model.eval()
    if fuse:
        fusion.fuse_projections(model)
    context = getattr(model.config, "max_position_embeddings", 4096)
    if max_model_len:
        context = min(context, max_model_len)
    version = ModelVersion(digest=content_digest(path), alias=alias or path.name)
    log.info("loaded %s in %.1fs on %s (%s)", path, time.perf_counter() - t0, dev, torch_dtype)
    first_device = next(model.parameters()).device
    return LoadedModel(model, tokenizer, version, first_device, torch_dtype, int(context), path)
