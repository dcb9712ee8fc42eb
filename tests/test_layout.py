"""The package layout of ../shared/DESIGN.md, pinned: which package may import which, and no
module cycles inside a package. Every import counts, including those inside functions.

What breaks the layout today is listed below with its reason, so that the list can only
shrink: a new arrow the design does not allow fails here, and so does an entry that is no
longer true (remove it when the code is fixed)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.servers import ROOT

# DESIGN.md's table: who may import whom (`tests/` and `bench/` may import everything).
MAY_IMPORT: dict[str, set[str]] = {
    "inferwatch": {
        "gateway",
        "inference",
        "ledger",
        "safety",
        "slo",
        "canary",
        "alerts",
        "dashboards",
        "reports",
        "console",
    },
    "gateway": {"ledger", "safety"},
    "inference": set(),
    "ledger": set(),
    "safety": {"ledger"},
    "slo": {"ledger"},
    "canary": {"ledger"},
    "alerts": {"slo"},
    "dashboards": {"slo"},
    "reports": {"ledger", "slo", "safety"},
    "console": {"ledger", "slo", "canary", "safety", "reports"},
}
# "Protocol models (the OpenAI API's request and response types) live in one module and are shared."
SHARED_MODULES = {"inference.protocol"}

# Known breaks, each (importer file, imported package), with the reason.
KNOWN_ARROWS = {
    # builds every package's live metric registry, to check each panel's metrics exist
    ("dashboards/check.py", "gateway"): "live registries for `dashboards build --check`",
    ("dashboards/check.py", "inference"): "live registries for `dashboards build --check`",
    ("dashboards/check.py", "alerts"): "live registries for `dashboards build --check`",
    ("dashboards/check.py", "canary"): "live registries for `dashboards build --check`",
}
KNOWN_CYCLES = {}


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in MAY_IMPORT:
        for f in sorted((ROOT / pkg).rglob("*.py")):
            parts = f.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def _imports(module: str, path: Path, modules: set[str]) -> set[str]:
    """Absolute names of every module `path` imports (relative imports resolved): for
    `from a import b`, `a.b` when that is a module, else `a`."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            out |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names}
    return out


MODULES = _modules()
IMPORTS = {m: _imports(m, p, set(MODULES)) for m, p in MODULES.items()}


def test_arrows_point_the_way_the_design_says():
    found: dict[tuple[str, str], str] = {}
    for module, names in IMPORTS.items():
        pkg = module.split(".")[0]
        for name in names:
            top = name.split(".")[0]
            if top in MAY_IMPORT and top != pkg and top not in MAY_IMPORT[pkg] and name not in SHARED_MODULES:
                found[(str(MODULES[module].relative_to(ROOT)), top)] = name
    unexpected = {k: v for k, v in found.items() if k not in KNOWN_ARROWS}
    assert not unexpected, f"imports DESIGN.md does not allow: {unexpected}"
    stale = set(KNOWN_ARROWS) - set(found)
    assert not stale, f"fixed, so remove from KNOWN_ARROWS: {stale}"


def _cycles() -> set[frozenset[str]]:
    """Strongly connected groups of two or more modules of one package (Tarjan)."""
    graph = {
        m: {n for n in IMPORTS[m] if n in MODULES and n != m and n.split(".")[0] == m.split(".")[0]} for m in MODULES
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: set[frozenset[str]] = set()

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                out.add(frozenset(group))

    for m in sorted(graph):
        if m not in index:
            visit(m)
    return out


def test_no_module_cycles_inside_a_package():
    cycles = _cycles()
    unexpected = [sorted(c) for c in cycles if c not in KNOWN_CYCLES]
    assert not unexpected, f"modules that import each other: {unexpected}"
    stale = [sorted(c) for c in set(KNOWN_CYCLES) - cycles]
    assert not stale, f"fixed, so remove from KNOWN_CYCLES: {stale}"


@pytest.mark.parametrize("pkg", sorted(MAY_IMPORT))
def test_the_checker_sees_each_package(pkg: str):
    # a package the checker cannot see would pass every rule vacuously
    if not (ROOT / pkg).is_dir():
        pytest.skip(f"{pkg}/ does not exist yet")
    assert any(m.split(".")[0] == pkg for m in MODULES)
