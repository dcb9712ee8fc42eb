"""Samples of a Prometheus text page, read with prometheus_client's own parser: the tests
and benchmarks read the /metrics pages of the processes they start."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


def samples(text: str, name: str, **labels: str) -> list[Sample]:
    """The samples called `name` (a histogram's `_bucket`, `_count`, `_sum` included in the
    name) whose labels include `labels`."""
    return [
        s
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def total(text: str, name: str, **labels: str) -> float:
    """The sum of those samples (0 when there are none)."""
    return sum(s.value for s in samples(text, name, **labels))
