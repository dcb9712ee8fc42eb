"""Latency thresholds as histogram buckets, and how Prometheus spells them in `le`.

A "TTFT <= 2 s" SLO needs a bucket whose `le` is exactly 2. The metric registry adds every
threshold of the loaded SLOs to its buckets (`histogram_buckets`), and the rules select the
bucket by its label (`le_matcher`).

Spelling: the Go client writes `le="1"`, the Python client and Prometheus 3 (which normalizes
on ingestion) write `le="1.0"`; fractional bounds are spelled the same everywhere ("2.5").
`format_le` gives the canonical Go spelling; `le_matcher` accepts every spelling, so rules keep
working across client libraries and Prometheus versions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal

from prometheus_client.utils import floatToGoString  # the Python client's own le formatter

from slo.metrics_catalog import CATALOG
from slo.model import SLO, LatencyMetric, LatencySLI


def format_le(threshold: float) -> str:
    """`le` as Prometheus' Go code writes it: 1 -> "1", 2.5 -> "2.5", 1e6 -> "1e+06"."""
    x = float(threshold)
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if math.isnan(x):
        return "NaN"
    if x == 0:
        return "0"
    # Go's strconv.FormatFloat(x, 'g', -1, 64): shortest round-trip digits, exponent form when
    # the decimal exponent is < -4 or >= 6 (client_golang's writeFloat).
    d = Decimal(repr(abs(x))).normalize()
    ds = "".join(map(str, d.as_tuple().digits))
    e10 = d.adjusted()  # the decimal exponent of the first digit
    prefix = "-" if x < 0 else ""
    if e10 < -4 or e10 >= 6:
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{prefix}{mant}e{'-' if e10 < 0 else '+'}{abs(e10):02d}"
    return prefix + format(d, "f")


def _go_string(x: float) -> str:
    """The Python client's spelling of a bound (its `floatToGoString` is untyped)."""
    spelled: str = floatToGoString(float(x))  # type: ignore[no-untyped-call]  # untyped in prometheus_client
    return spelled


def le_spellings(threshold: float) -> tuple[str, ...]:
    """Every spelling a bucket bound may carry: Go client, Python client, Prometheus 3."""
    go = format_le(threshold)
    floaty = go if any(c in go for c in ".eIN") else go + ".0"
    return tuple(dict.fromkeys((go, floaty, _go_string(threshold))))


def le_matcher(threshold: float) -> str:
    """PromQL matcher for the bucket `le=threshold`, tolerant of its spellings."""
    spellings = le_spellings(threshold)
    if len(spellings) == 1:
        return f'le="{spellings[0]}"'
    # [.] and [+] are literal without backslashes, which YAML and PromQL would both unescape.
    alts = "|".join(s.replace(".", "[.]").replace("+", "[+]") for s in spellings)
    return f'le=~"{alts}"'


def latency_thresholds(slos: Iterable[SLO]) -> dict[LatencyMetric, tuple[float, ...]]:
    """Sorted thresholds per latency metric used by the SLOs (every metric present)."""
    out: dict[LatencyMetric, set[float]] = {m: set() for m in LatencyMetric}
    for slo in slos:
        if isinstance(slo.sli, LatencySLI):
            out[slo.sli.metric].add(slo.sli.threshold_s)
    return {m: tuple(sorted(v)) for m, v in out.items()}


def thresholds_by_prom_metric(slos: Iterable[SLO]) -> dict[str, tuple[float, ...]]:
    """Thresholds keyed by Prometheus histogram name."""
    return {m.prom_metric: v for m, v in latency_thresholds(slos).items()}


def thresholds_by_ledger_metric(slos: Iterable[SLO]) -> dict[str, tuple[float, ...]]:
    """Thresholds keyed by the ledger's bucket metric ("latency", "ttft", "tpot"), ready for
    `ledger.buckets.with_thresholds`."""
    return {m.ledger_metric: v for m, v in latency_thresholds(slos).items()}


def histogram_buckets(metric: LatencyMetric | str, slos: Iterable[SLO]) -> tuple[float, ...]:
    """Catalog default buckets of a latency histogram plus every SLO threshold on it.

    `metric` is a LatencyMetric, its spec spelling ("ttft") or the Prometheus histogram name.
    """
    m = _latency_metric(metric)
    return tuple(sorted({*CATALOG[m.prom_metric].buckets, *latency_thresholds(slos)[m]}))


def _latency_metric(metric: LatencyMetric | str) -> LatencyMetric:
    for m in LatencyMetric:
        if metric in (m, m.value, m.prom_metric):
            return m
    raise KeyError(f"not a latency histogram: {metric!r}")
