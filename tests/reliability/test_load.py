"""Load through a real gateway process (bench/loadgen.py): every request answered, one ledger
row each, billed tokens == upstream usage, metrics == ledger. Short by default; the issue's
full 200 clients x 20,000 requests under -m slow."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from bench.loadgen import run_load


def _assert_books_balance(report, requests: int) -> None:
    assert report.failures == [], asdict(report)
    assert report.ledger_rows == requests and report.lost_rows == 0 and report.duplicate_rows == 0
    assert report.billed_tokens == report.reported_tokens == report.metrics_tokens > 0
    assert report.metrics_requests == requests


def test_load_stub_50_clients_1000_requests(tmp_path):
    report = run_load(50, 1000, workdir=tmp_path)
    _assert_books_balance(report, 1000)
    assert report.by_status == {"200": 1000}


@pytest.mark.slow  # the demo worker on 2 shared CPU cores: over a minute
def test_load_real_demo_worker_short(tmp_path):
    """The real worker on CPU: few clients; its own token counters agree with the bill."""
    report = run_load(8, 60, worker=True, workdir=tmp_path)
    _assert_books_balance(report, 60)  # includes: the worker's token counters == billed tokens of its generations
    assert report.worker_tokens > 0


@pytest.mark.slow
def test_load_stub_200_clients_20000_requests(tmp_path):
    report = run_load(200, 20_000, workdir=tmp_path)
    _assert_books_balance(report, 20_000)
    print(
        f"\nload: {report.requests} requests in {report.seconds:.1f}s ({report.rps:.0f} rps), "
        f"RSS {report.rss_before_mib:.0f} -> {report.rss_after_mib:.0f} MiB"
    )
