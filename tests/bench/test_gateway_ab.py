"""bench/gateway_ab.py end to end: two tiny rounds of HEAD against HEAD, each gateway from its
own temporary worktree, and the worktrees gone afterwards. Structure only, never timings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.gateway_ab import imported_checkouts
from tests.servers import ROOT

if subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True).returncode != 0:
    pytest.skip("the harness checks out git revisions: not a git checkout", allow_module_level=True)


def _ab(*args: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "bench/gateway_ab.py", *args, "--workdir", str(workdir)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )


def _worktrees() -> str:
    return subprocess.run(["git", "-C", str(ROOT), "worktree", "list"], capture_output=True, text=True).stdout


def test_head_against_head_runs_each_from_its_own_tree(tmp_path):
    tiny = ["--rounds", "2", "--rates", "50", "--seconds", "0.5", "--warmup", "0.3", "--connections", "4"]
    out = _ab("HEAD", "HEAD", *tiny, "--json", workdir=tmp_path / "run")
    assert out.returncode == 0, out.stderr[-4000:]
    report = json.loads(out.stdout)
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()

    revs = report["revisions"]
    assert [r["label"] for r in revs] == ["A", "B"]
    assert revs[0]["tree"] != revs[1]["tree"]
    for r in revs:
        assert r["commit"] == head
        assert r["imported_from"] == [r["tree"]]
        assert r["gateway_file"] == str(Path(r["tree"]) / "gateway" / "__init__.py")
        assert not Path(r["tree"]).exists() and r["tree"] not in _worktrees()
    assert report["own_tree"] == {"A": True, "B": True} and report["ok"] is True

    assert [rd["order"] for rd in report["rounds"]] == [["A", "B"], ["B", "A"]]  # one ABBA block
    for rd in report["rounds"]:
        assert [d["rate"] for d in rd["direct"]] == [50.0]
        for label in "AB":
            res = rd["results"][label]
            assert [x["rate"] for x in res["rates"]] == [50.0]
            assert res["rates"][0]["requests"] == 25 and {"added_p50_ms", "added_p99_ms"} <= res["rates"][0].keys()
            assert res["saturation"]["requests"] > 0

    assert set(report["summary"]) == {"added p50 @50 rps", "added p99 @50 rps", "saturation"}
    for row in report["summary"].values():
        assert set(row["median"]) == {"A", "B"} and set(row["ratio"]) == {"B/A"}
        ci = row["ratio"]["B/A"]["ci95"]
        assert ci is None or ci[0] <= ci[1]
    for led in report["ledger"].values():
        assert led["rows"] == led["answered"] > 0 and led["lost"] == 0
    assert (tmp_path / "run" / "A" / "gateway.log").exists()  # a given --workdir keeps its logs


def test_a_revision_that_is_not_there_exits_2_and_leaves_no_worktree(tmp_path):
    out = _ab("HEAD", "no-such-revision-0123", workdir=tmp_path / "run")
    assert out.returncode == 2 and "no-such-revision-0123" in out.stderr
    assert not (tmp_path / "run" / "trees" / "A").exists()
    assert str(tmp_path) not in _worktrees()


def test_help():
    out = subprocess.run([sys.executable, "bench/gateway_ab.py", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and "ABBA" in out.stdout


def test_imports_from_another_checkout_are_seen(tmp_path):
    """A verbose import log naming this checkout's gateway and the venv's packages: one checkout, this one."""
    log = tmp_path / "gateway.log"
    site = Path(sys.prefix) / "lib" / "python3.11" / "site-packages" / "typer" / "__pycache__" / "core.cpython-311.pyc"
    log.write_text(
        f"# code object from {ROOT / 'gateway' / '__init__.py'}\n"
        f"# code object from '{ROOT / 'ledger' / '__pycache__' / 'models.cpython-311.pyc'}'\n"
        f"# code object from '{site}'\n"
        "import 'gateway' # <SourceFileLoader>\n"
    )
    assert imported_checkouts(log) == ([str(ROOT)], str(ROOT / "gateway" / "__init__.py"))
