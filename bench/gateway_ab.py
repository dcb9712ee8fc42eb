"""Before/after: the gateways of two or more git revisions, interleaved in one run.

Made for a shared, noisy machine, where two runs of one revision differ more than two
revisions do. Each revision is checked out into a temporary detached worktree, and its gateway
is started by bench/gateway_overhead.py's `start_gateway` (its configuration, `keys create`,
`serve`) with that tree alone on PYTHONPATH and PYTHONSAFEPATH set, so the project is imported
from the tree, not from this checkout or the venv's editable install. All of them run at once
against one fast stub upstream and the same load generator (gateway_overhead's, imported), and
are measured in many short rounds in the order A B, B A, A B, ... (ABBA blocks; ABC CBA for
three), so a change in machine load falls on every revision alike. Within a round it goes level
by level: at each fixed open-loop rate the stub directly, then every revision (latency added
over the stub seconds before), then closed-loop saturation throughput of every revision.
Recording is on (a ledger row per request) and safety off; `--safety` runs each revision's
default configuration (no `safety` section).

The report gives each revision's median over rounds and, for every revision against the first,
the ratio of medians with a paired bootstrap 95 % interval (rounds resampled, each round's
measurements of all revisions kept together). At the end every gateway is stopped, its ledger
rows are counted (lost rows must be 0), and its log is checked: every project module it
imported came from its own tree (the gateways run with PYTHONVERBOSE=1 for this).

    ./dev bench gateway_ab REV_A REV_B [REV ...] [--rounds 8] [--rates 100,300] [--seconds 3]
        [--connections 32] [--safety] [--json] [--chart FILE.png] [--workdir DIR] [--keep]

Exit code 0 when every revision ran from its own tree and lost no ledger row, 1 when one did
not, 2 when a revision cannot be checked out or its gateway does not start; 130 on Ctrl-C.
Worktrees are removed in every case. Timings are printed, never judged.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.gateway_overhead import fixed_rate, ledger_rows, saturation, spawn, start_gateway, stop
from tests.servers import ROOT, free_port, wait_ready

PATH = "/v1/chat/completions"
BOOTSTRAP = 2000
_LOADED = re.compile(r"^# code object from '?(.+?)'?$", re.M)


class SetupError(Exception):
    """A revision could not be checked out or its gateway did not start (exit code 2)."""


@dataclass
class Revision:
    label: str  # A, B, C, ...
    rev: str  # as given
    commit: str = ""
    tree: Path | None = None
    proc: subprocess.Popen | None = None
    url: str = ""
    key: str = ""
    answered: int = 0  # 200 responses, warm-up included: the ledger rows it must have
    checkouts: list[str] = field(default_factory=list)  # checkouts its gateway imported project code from
    gateway_file: str = ""

    def describe(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "rev": self.rev,
            "commit": self.commit,
            "tree": str(self.tree),
            "gateway_file": self.gateway_file,
            "imported_from": self.checkouts,
        }


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout.strip()


def checkout(r: Revision, trees: Path) -> None:
    try:
        r.commit = git("rev-parse", "--verify", "--quiet", f"{r.rev}^{{commit}}")
    except subprocess.CalledProcessError as exc:
        raise SetupError(f"{r.rev}: not a commit in {ROOT}") from exc
    r.tree = trees / r.label
    try:
        git("worktree", "add", "--detach", str(r.tree), r.commit)
    except subprocess.CalledProcessError as exc:
        r.tree = None  # nothing of ours to remove
        raise SetupError(f"{r.rev}: git worktree add failed: {exc.stderr.strip()}") from exc
    head = subprocess.run(["git", "-C", str(r.tree), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    assert head.stdout.strip() == r.commit, (r.tree, head.stdout)


def remove_worktree(tree: Path) -> None:
    try:
        git("worktree", "remove", "--force", str(tree))
    except subprocess.CalledProcessError:
        shutil.rmtree(tree, ignore_errors=True)
        git("worktree", "prune")


def _checkout_of(path: Path, cache: dict[Path, Path | None]) -> Path | None:
    """The inferwatch checkout (a folder with pyproject.toml and inferwatch/) whose package a file
    belongs to, if any; a virtual environment inside a checkout is not part of it."""
    folder = path.parent
    if folder not in cache:
        root = next(
            (p for p in (folder, *folder.parents) if (p / "pyproject.toml").is_file() and (p / "inferwatch").is_dir()),
            None,
        )
        top = root / path.relative_to(root).parts[0] if root is not None and root != folder else None
        cache[folder] = root if top is not None and (top / "__init__.py").is_file() else None
    return cache[folder]


def imported_checkouts(log: Path) -> tuple[list[str], str]:
    """From a PYTHONVERBOSE log: the checkouts project modules were loaded from, and gateway/__init__'s file."""
    cache: dict[Path, Path | None] = {}
    roots: set[str] = set()
    gateway_file = ""
    for m in _LOADED.finditer(log.read_text(errors="replace")):
        path = Path(m.group(1))
        if path.parent.name == "__pycache__":  # the source file beside it tells the module
            path = path.parent.parent / (path.name.split(".", 1)[0] + ".py")
        if (root := _checkout_of(path, cache)) is not None:
            roots.add(str(root))
            if path == root / "gateway" / "__init__.py":
                gateway_file = str(path)
    return sorted(roots), gateway_file


def _quiet(text: str | None, chars: int = 3000) -> str:
    """A log's end without PYTHONVERBOSE's import lines."""
    lines = (text or "").splitlines()
    return "\n".join(x for x in lines if not x.startswith(("# ", "import "))).strip()[-chars:]


@contextmanager
def _imports_from(tree: Path) -> Iterator[None]:
    """Processes started inside import the project from `tree`: it is alone on PYTHONPATH, and
    PYTHONSAFEPATH keeps their working directory (this checkout) off the front of sys.path.
    PYTHONVERBOSE logs every module's file, for the check. This process read all three at its start."""
    names = ("PYTHONPATH", "PYTHONSAFEPATH", "PYTHONVERBOSE")
    saved = {k: os.environ.get(k) for k in names}
    os.environ.update(PYTHONPATH=str(tree), PYTHONSAFEPATH="1", PYTHONVERBOSE="1")
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def start(r: Revision, workdir: Path, stub_url: str, safety: dict | None) -> None:
    assert r.tree is not None
    log = workdir / r.label / "gateway.log"
    try:
        with _imports_from(r.tree):
            r.proc, r.url, r.key = start_gateway(workdir / r.label, stub_url, safety)
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        detail = exc.stderr if isinstance(exc, subprocess.CalledProcessError) else log.read_text(errors="replace")
        raise SetupError(f"{r.label} ({r.rev}): gateway did not start\n{_quiet(detail)}") from exc
    r.checkouts, r.gateway_file = imported_checkouts(log)
    if r.checkouts != [str(r.tree)]:
        raise SetupError(f"{r.label} ({r.rev}): gateway imported project code from {r.checkouts}, not {r.tree}")


def start_stub(workdir: Path) -> tuple[subprocess.Popen, str]:
    """This checkout's stub upstream, shared by every revision."""
    port = free_port()
    proc = spawn([sys.executable, "-m", "tests.stub_upstream", "--port", str(port)], workdir / "stub.log")
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc, workdir / "stub.log", path="/v1/models")
    return proc, url


def count_rows(gateway_dir: Path) -> int:
    n = ledger_rows(gateway_dir)
    return n[0] if isinstance(n, tuple) else n  # (rows, unscanned rows) where gateway_overhead counts those too


def orders(labels: list[str], rounds: int) -> list[list[str]]:
    """A B, B A, A B, ...: each pair of rounds is one ABBA block."""
    return [labels if i % 2 == 0 else labels[::-1] for i in range(rounds)]


def measure_round(order: list[Revision], stub_url: str, rates: list[float], seconds: float, connections: int) -> dict:
    """One round, level by level: at each rate the stub directly, then every revision in `order`;
    then saturation in `order`. Revisions compared at one level are seconds apart."""
    direct: list[dict] = []
    results: dict[str, Any] = {r.label: {"rates": []} for r in order}
    for rate in rates:
        d = asyncio.run(fixed_rate(stub_url + PATH, {}, rate, seconds))
        direct.append(d)
        for r in order:
            res = asyncio.run(fixed_rate(r.url + PATH, {"Authorization": f"Bearer {r.key}"}, rate, seconds))
            r.answered += res["requests"] - res["errors"]
            res["added_p50_ms"] = res["p50_ms"] - d["p50_ms"]
            res["added_p99_ms"] = res["p99_ms"] - d["p99_ms"]
            results[r.label]["rates"].append(res)
    for r in order:
        sat = asyncio.run(saturation(r.url + PATH, {"Authorization": f"Bearer {r.key}"}, connections, seconds))
        r.answered += sat["requests"] - sat["errors"]
        results[r.label]["saturation"] = sat
    return {"direct": direct, "results": results}


def metrics(rates: list[float]) -> list[tuple[str, str, Any]]:
    """(name, unit, getter from one round's result of one revision)."""
    out: list[tuple[str, str, Any]] = []
    for i, rate in enumerate(rates):
        for q in ("p50", "p99"):
            out.append((f"added {q} @{rate:g} rps", "ms", lambda m, i=i, q=q: m["rates"][i][f"added_{q}_ms"]))
    out.append(("saturation", "req/s", lambda m: m["saturation"]["rps"]))
    return out


def _ratio_of_medians(a: list[float], b: list[float]) -> float | None:
    base = statistics.median(a)
    return statistics.median(b) / base if base > 0 else None


def _median_of_ratios(a: list[float], b: list[float]) -> float | None:
    """Each round's B/A, then their median: load common to both measurements of a round cancels."""
    return statistics.median(y / x for x, y in zip(a, b, strict=True)) if all(x > 0 for x in a) else None


def bootstrap(stat: Any, a: list[float], b: list[float], rng: random.Random) -> tuple[float, float] | None:
    """95 % interval of `stat(a, b)` with rounds resampled with replacement, each round's pair kept together."""
    n = len(a)
    if n < 2:
        return None
    values = []
    for _ in range(BOOTSTRAP):
        idx = [rng.randrange(n) for _ in range(n)]
        if (v := stat([a[i] for i in idx], [b[i] for i in idx])) is not None:
            values.append(v)
    if len(values) < BOOTSTRAP // 2:
        return None
    values.sort()
    return values[int(0.025 * len(values))], values[int(0.975 * len(values)) - 1]


def summarize(labels: list[str], rounds: list[dict], rates: list[float]) -> dict[str, Any]:
    rng = random.Random(0)  # the same run always gives the same interval
    base = labels[0]
    out: dict[str, Any] = {}
    for name, unit, get in metrics(rates):
        values = {label: [get(rd["results"][label]) for rd in rounds] for label in labels}
        row: dict[str, Any] = {"unit": unit, "median": {k: statistics.median(v) for k, v in values.items()}}
        row["ratio"] = {}
        for label in labels[1:]:
            a, b = values[base], values[label]
            row["ratio"][f"{label}/{base}"] = {
                "ratio": _ratio_of_medians(a, b),
                "ci95": bootstrap(_ratio_of_medians, a, b, rng),
                "paired": _median_of_ratios(a, b),
                "paired_ci95": bootstrap(_median_of_ratios, a, b, rng),
            }
        out[name] = row
    return out


def _cell(value: float | None, ci: tuple[float, float] | None) -> str:
    cell = "n/a" if value is None else f"{value:.2f}"
    return cell + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def print_table(report: dict[str, Any]) -> None:
    revs = report["revisions"]
    base = revs[0]["label"]
    m = report["machine"]
    print(
        f"\n{len(report['rounds'])} rounds ({' '.join(''.join(rd['order']) for rd in report['rounds'])}), "
        f"{report['seconds']:g} s per level, {report['connections']} connections at saturation; "
        f"{m['cpus']} CPUs, load average {m['load_start']:.1f} at start, {m['load_end']:.1f} at end"
    )
    for r in revs:
        print(f"  {r['label']} = {r['rev']} ({r['commit'][:12]}), gateway from {r['gateway_file']}")
    head = f"{'median over rounds':<24}" + "".join(f"{r['label'] + ' ' + r['rev']:>16}" for r in revs)
    for r in revs[1:]:
        q = f"{r['label']}/{base}"
        head += f"{q + ' of medians':>22}{'paired ' + q:>22}"
    print("\n" + head)
    for name, row in report["summary"].items():
        line = f"{name + ' (' + row['unit'] + ')':<24}"
        digits = 0 if row["unit"] == "req/s" else 2
        line += "".join(f"{row['median'][r['label']]:>16.{digits}f}" for r in revs)
        for r in revs[1:]:
            q = row["ratio"][f"{r['label']}/{base}"]
            line += f"{_cell(q['ratio'], q['ci95']):>22}{_cell(q['paired'], q['paired_ci95']):>22}"
        print(line)
    print(f"(ratios with a bootstrap 95 % interval over rounds; paired: the median of each round's ratio to {base})")
    print()
    for label, led in report["ledger"].items():
        print(
            f"ledger ({label}): {led['rows']} rows for {led['answered']} answered requests -> lost rows: {led['lost']}"
        )
    errors = {k: v for k, v in report["errors"].items() if v}
    if errors:
        print(f"non-200 or failed requests: {errors}")


def chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["summary"])
    fig, axes = plt.subplots(len(names), 1, figsize=(8, 2.2 * len(names)), sharex=True)
    rates = [x["rate"] for x in report["rounds"][0]["direct"]]
    getters = {name: get for name, _, get in metrics(rates)}
    xs = list(range(1, len(report["rounds"]) + 1))
    for ax, name in zip(axes, names, strict=True):
        for r in report["revisions"]:
            ys = [getters[name](rd["results"][r["label"]]) for rd in report["rounds"]]
            ax.plot(xs, ys, marker="o", label=f"{r['label']} {r['rev']}")
        ax.set_ylabel(f"{name}\n({report['summary'][name]['unit']})", fontsize=8)
    axes[0].legend(fontsize=8)
    axes[-1].set_xlabel("round (" + " ".join("".join(rd["order"]) for rd in report["rounds"]) + ")")
    axes[-1].set_xticks(xs)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole run; SetupError when a revision cannot be run. Worktrees and processes are gone after."""
    workdir: Path = args.workdir
    rates = [float(x) for x in args.rates.split(",")]
    revs = [Revision(chr(ord("A") + i), rev) for i, rev in enumerate(args.revisions)]
    safety = {"default": True} if args.safety else None
    stub: subprocess.Popen | None = None
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "load_start": os.getloadavg()[0]},
        "safety": "default configuration" if args.safety else {"enabled": False},
        "rates": rates,
        "seconds": args.seconds,
        "connections": args.connections,
        "rounds": [],
    }
    try:
        for r in revs:
            checkout(r, workdir / "trees")
        stub, stub_url = start_stub(workdir)
        for r in revs:
            print(f"starting {r.label} = {r.rev} ({r.commit[:12]}) from {r.tree}", file=sys.stderr)
            start(r, workdir, stub_url, safety)
        for r in revs:  # warm-up: first imports, caches, connections; counted in the ledger check only
            warm = asyncio.run(fixed_rate(r.url + PATH, {"Authorization": f"Bearer {r.key}"}, rates[0], args.warmup))
            r.answered += warm["requests"] - warm["errors"]
        for i, order in enumerate(orders([r.label for r in revs], args.rounds)):
            load = os.getloadavg()[0]
            by_label = {r.label: r for r in revs}
            rd = {"round": i + 1, "order": order, "load": load}
            rd |= measure_round([by_label[x] for x in order], stub_url, rates, args.seconds, args.connections)
            for label in order:
                r, res = by_label[label], rd["results"][label]
                cells = ", ".join(
                    f"{x['rate']:g} rps +{x['added_p50_ms']:.2f}/+{x['added_p99_ms']:.2f} ms" for x in res["rates"]
                )
                print(
                    f"[round {i + 1}/{args.rounds}, load {load:.1f}] {label} {r.rev}: {cells}, "
                    f"saturation {res['saturation']['rps']:.0f} req/s",
                    file=sys.stderr,
                )
            report["rounds"].append(rd)
        for r in revs:
            assert r.proc is not None
            stop(r.proc)  # graceful: the ledger writer flushes
        report["machine"]["load_end"] = os.getloadavg()[0]
        report["ledger"] = {}
        for r in revs:
            rows = count_rows(workdir / r.label)
            report["ledger"][r.label] = {"answered": r.answered, "rows": rows, "lost": r.answered - rows}
            r.checkouts, r.gateway_file = imported_checkouts(workdir / r.label / "gateway.log")  # lazy imports too
    finally:
        for p in [r.proc for r in revs] + [stub]:
            if p is not None and p.poll() is None:
                stop(p)
        for r in revs:
            if r.tree is not None and r.tree.exists():
                remove_worktree(r.tree)
    report["revisions"] = [r.describe() for r in revs]
    report["errors"] = {
        r.label: sum(x["errors"] for rd in report["rounds"] for x in rd["results"][r.label]["rates"])
        + sum(rd["results"][r.label]["saturation"]["errors"] for rd in report["rounds"])
        for r in revs
    }
    report["summary"] = summarize([r.label for r in revs], report["rounds"], rates)
    report["own_tree"] = {r.label: r.checkouts == [str(r.tree)] for r in revs}
    report["ok"] = all(report["own_tree"].values()) and all(x["lost"] == 0 for x in report["ledger"].values())
    return report


def show(report: dict[str, Any], args: argparse.Namespace) -> int:
    if args.chart:
        chart(report, args.chart)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 0 if report["ok"] else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("revisions", nargs="*", metavar="REV", help="git revisions; the first is the baseline (A)")
    ap.add_argument("--rounds", type=int, default=8, help="measurements per revision (pairs of rounds: ABBA)")
    ap.add_argument("--rates", default="100,300", help="open-loop request rates, comma-separated")
    ap.add_argument("--seconds", type=float, default=3.0, help="per rate and for saturation, per round")
    ap.add_argument("--connections", type=int, default=32, help="closed-loop connections for saturation")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds at the first rate per gateway before round 1")
    ap.add_argument("--safety", action="store_true", help="each revision's default configuration (safety on)")
    ap.add_argument("--json", action="store_true", help="the whole report as JSON on stdout")
    ap.add_argument("--chart", type=Path, help="PNG of every round's values (matplotlib)")
    ap.add_argument("--workdir", type=Path, help="for worktrees, logs and ledgers (default: a new temp dir)")
    ap.add_argument("--replay", type=Path, help="no run: the table (and --chart) of an earlier --json report")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir's logs (kept anyway when a check fails)")
    args = ap.parse_args()
    if args.replay:
        report = json.loads(args.replay.read_text())
        report["summary"] = summarize([r["label"] for r in report["revisions"]], report["rounds"], report["rates"])
        return show(report, args)
    if len(args.revisions) < 2 or args.rounds < 1:
        ap.error("give at least two revisions and one round")
    own_workdir = args.workdir is None
    args.workdir = args.workdir or Path(tempfile.mkdtemp(prefix="iw-ab-"))
    args.workdir.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    t0 = time.monotonic()
    try:
        report = run(args)
    except SetupError as exc:
        print(f"gateway_ab: {exc}\n(logs in {args.workdir})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gateway_ab: interrupted; worktrees removed, logs in {args.workdir}", file=sys.stderr)
        return 130
    report["wall_s"] = round(time.monotonic() - t0, 1)
    show(report, args)
    if report["ok"] and own_workdir and not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)
    else:
        print(f"logs and ledgers in {args.workdir}", file=sys.stderr)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
