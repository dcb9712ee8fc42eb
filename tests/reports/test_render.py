"""The report's three forms; the HTML opened in headless Chromium shows its charts."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ledger.db import create_engine_for, migrate
from reports import render
from reports.data import build_report
from reports.model import BudgetLine, CacheLine, CacheSection, WeeklyReport
from tests.reports import _week as W

CHROMIUM = shutil.which("chromium")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> WeeklyReport:
    url = f"sqlite:///{tmp_path_factory.mktemp('ledger') / 'l.db'}"
    migrate(url)
    engine = create_engine_for(url)
    W.fill(engine)
    try:
        return build_report(engine, W.WEEK, now=W.AFTER, slos=W.SLOS)
    finally:
        engine.dispose()


def test_json_is_the_report(report: WeeklyReport) -> None:
    text = render.as_json(report)
    assert WeeklyReport.model_validate_json(text) == report
    assert '"cost_change"' in text and '"precision"' in text and "NaN" not in text


def test_markdown_has_every_section_and_the_seams(report: WeeklyReport) -> None:
    md = render.markdown(report)
    for heading in ("## Cost", "## Usage", "## Safety", "## Reliability", "## Change", "### Anomalies", "### Budgets"):
        assert heading in md
    assert "| acme | $104.00 | $76.00 | +36.8% |" in md
    assert "No budgets configured." in md and "The response cache is off." in md
    month = BudgetLine(
        tenant="acme",
        budget="month-spend",
        period="month",
        period_start=datetime(2026, 11, 1, tzinfo=timezone.utc),
        period_end=datetime(2026, 12, 1, tzinfo=timezone.utc),
        counted_until=W.WEEK.end,
        limit=500,
        used=380,
    )
    day = month.model_copy(
        update={
            "budget": "day-tokens",
            "kind": "tokens",
            "period": "day",
            "period_start": W.MON,
            "period_end": W.MON + timedelta(days=1),
            "counted_until": W.MON + timedelta(days=1),
            "limit": 1000,
            "used": 1200,
        }
    )
    cache = CacheLine(name="all traffic", requests=200, lookups=80, hits=50, hit_cost_usd=0.5, miss_cost_usd=4.0)
    with_seams = report.model_copy(
        update={
            "cost": report.cost.model_copy(update={"budgets": [month, day]}),
            "cache": CacheSection(
                enabled=True,
                totals=cache,
                by_tenant=[cache.model_copy(update={"name": "acme"})],
                by_model=[],
                method="how it is counted",
            ),
        }
    )
    md = render.markdown(with_seams)
    assert "| acme | month-spend | 2026-11 (to date) | $500.00 | $380.00 | $120.00 | 76.0% | ok |" in md
    assert "| acme | day-tokens | 1,000 tokens | 1 | 0 | 1 | 2026-11-16 | 1,200 tokens (120.0%) |" in md
    assert "50 of 80 cacheable requests answered from the cache (62.5%; 200 requests in all), about $3.50 saved." in md
    assert "| acme | 200 | 80 | 50 | 62.5% | $3.50 |" in md and "_how it is counted_" in md
    assert "Budgets: 1 periods used up, 0 past their soft limit" in render.summary(with_seams)
    summary = render.summary(report)
    assert "$119.20 (+25.9% vs 2026-W46)" in summary and "gw-avail" not in summary and "avail missed" in summary


def test_markdown_table_cells_are_escaped(report: WeeklyReport) -> None:
    odd = report.model_copy(update={"tenants_without_traffic": ["a|b"]})
    assert "a\\|b" in render.markdown(odd)


def _colourful_pixels(png: Path) -> int:
    """Pixels of a saturated colour (chart bars; the page's text is grey or black)."""
    rgb = np.asarray(Image.open(png).convert("RGB")).astype(int)
    return int(((rgb.max(axis=2) - rgb.min(axis=2)) > 80).sum())


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args],  # type: ignore[list-item]
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (CI installs Debian's chromium)")
def test_html_opens_in_chromium_and_shows_the_charts(report: WeeklyReport, tmp_path: Path) -> None:
    html = render.html(report)
    assert not re.search(r"(src|href)=\"https?:", html)  # self-contained
    page = tmp_path / "report.html"
    page.write_text(html)
    bare = tmp_path / "bare.html"
    bare.write_text(re.sub(r"<img [^>]*>", "", html))

    dom = _chromium("--dump-dom", page.as_uri()).stdout
    sources = re.findall(r'<img [^>]*src="([^"]+)"', dom)
    assert len(sources) == 4 and all(s.startswith("data:image/png;base64,") for s in sources)
    sizes = {Image.open(io.BytesIO(base64.b64decode(s.split(",", 1)[1]))).size for s in sources}
    assert all(w > 300 and h > 100 for w, h in sizes)

    shots = {}
    for name, path in (("report", page), ("bare", bare)):
        shots[name] = tmp_path / f"{name}.png"
        _chromium(f"--screenshot={shots[name]}", "--window-size=1200,3000", path.as_uri())
    with_charts, without = _colourful_pixels(shots["report"]), _colourful_pixels(shots["bare"])
    assert with_charts > 50_000 and with_charts > 5 * without  # the bars are there, not only coloured text
