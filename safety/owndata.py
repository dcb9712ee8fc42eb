"""The project's own evaluation sets (``safety/data``): ordinary traffic and contrast pairs.

Both are split in two halves by position: ordinary rows alternate train / holdout, contrast
rows go by pair (a harmful or attack text and its benign neighbour stay together). The
holdout halves are never used for training or for choosing thresholds. A third set,
``ordinary_fresh.json``, was written after the shipped heads were trained and every threshold
chosen: all of it is holdout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

DATA = Path(__file__).parent / "data"
Split = Literal["train", "holdout", "all"]


def _items(name: str) -> list[dict]:
    return json.loads((DATA / name).read_text(encoding="utf-8"))["items"]


def ordinary(split: Split = "all") -> list[dict]:
    """Ordinary product requests (all benign), with their ``kind``."""
    rows = [
        {**r, "label": "benign", "source": f"inferwatch/ordinary/{r['kind']}", "split": "holdout" if i % 2 else "train"}
        for i, r in enumerate(_items("ordinary_traffic.json"))
    ]
    return [r for r in rows if split in ("all", r["split"])]


def fresh_ordinary() -> list[dict]:
    """Ordinary product requests written after training (all benign, all holdout)."""
    return [
        {**r, "label": "benign", "source": f"inferwatch/ordinary_fresh/{r['kind']}", "split": "holdout"}
        for r in _items("ordinary_fresh.json")
    ]


def contrast(split: Split = "all") -> list[dict]:
    """Harmful / jailbreak / injection texts, each beside a benign text sharing its words."""
    rows = [
        {**r, "source": "inferwatch/contrast", "split": "holdout" if (i // 2) % 2 else "train"}
        for i, r in enumerate(_items("contrast.json"))
    ]
    return [r for r in rows if split in ("all", r["split"])]


def own_rows(split: Split) -> list[dict]:
    return ordinary(split) + contrast(split)
