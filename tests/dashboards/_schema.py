"""Structural checks of Grafana dashboard JSON for the schema version it declares.

No maintained JSON schema of Grafana dashboards is published on PyPI, so these are the
invariants of schemaVersion 39 (Grafana 10.4) that Grafana relies on when it loads a file.
"""

from __future__ import annotations

import re
from typing import Any

PANEL_TYPES = {"row", "timeseries", "stat", "bargauge", "table", "heatmap"}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRAFANA_VARIABLES = {"__rate_interval", "__interval", "__range", "datasource"}


def _overlaps(a: dict[str, int], b: dict[str, int]) -> bool:
    return (
        a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]
    )


def schema_problems(d: dict[str, Any], schema_version: int) -> list[str]:
    out: list[str] = []
    need = {
        "uid": str,
        "title": str,
        "schemaVersion": int,
        "panels": list,
        "templating": dict,
        "time": dict,
        "tags": list,
        "editable": bool,
        "refresh": str,
        "timezone": str,
        "annotations": dict,
        "links": list,
    }
    out += [f"top-level {k!r} missing or not {t.__name__}" for k, t in need.items() if not isinstance(d.get(k), t)]
    if out:
        return out
    if d["schemaVersion"] != schema_version:
        out.append(f"schemaVersion {d['schemaVersion']} != {schema_version}")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", d["uid"]):
        out.append(f"uid {d['uid']!r} is not a valid Grafana uid")
    if "rows" in d:
        out.append("legacy 'rows' layout present")
    if not (isinstance(d["time"].get("from"), str) and isinstance(d["time"].get("to"), str)):
        out.append("time.from/to must be strings")
    variables = d["templating"].get("list", [])
    names = [v["name"] for v in variables]
    if len(names) != len(set(names)):
        out.append(f"duplicate variables {names}")
    for v in variables:
        if v["type"] == "datasource" and v["query"] != "prometheus":
            out.append(f"datasource variable {v['name']} does not select prometheus")
        if v["type"] == "query" and v.get("datasource") != DATASOURCE:
            out.append(f"variable {v['name']} has no datasource reference")
    ids, boxes = [], []
    for p in d["panels"]:
        where = f"panel {p.get('id')} {p.get('title')!r}"
        ids.append(p.get("id"))
        if not isinstance(p.get("id"), int):
            out.append(f"{where}: id must be an int")
        if p.get("type") not in PANEL_TYPES:
            out.append(f"{where}: unknown type {p.get('type')!r}")
        g = p.get("gridPos") or {}
        if (
            not all(isinstance(g.get(k), int) for k in "hwxy")
            or g["w"] < 1
            or g["h"] < 1
            or g["x"] < 0
            or g["x"] + g["w"] > 24
        ):
            out.append(f"{where}: bad gridPos {g}")
            continue
        if any(_overlaps(g, other) for other in boxes):
            out.append(f"{where}: overlaps another panel")
        boxes.append(g)
        if p["type"] == "row":
            if p.get("collapsed") or p.get("panels"):
                out.append(f"{where}: an expanded row holds no panels of its own")
            continue
        if not p.get("title") or not p.get("description"):
            out.append(f"{where}: title and description are required")
        if p.get("datasource") != DATASOURCE:
            out.append(f"{where}: datasource must reference the $datasource variable")
        if p.get("repeat") and p["repeat"] not in names:
            out.append(f"{where}: repeats over unknown variable {p['repeat']}")
        targets = p.get("targets") or []
        refs = [t.get("refId") for t in targets]
        if not targets or len(set(refs)) != len(refs) or not all(refs):
            out.append(f"{where}: targets need unique refIds")
        for t in targets:
            if not t.get("expr") or t.get("datasource") != DATASOURCE:
                out.append(f"{where}: target {t.get('refId')} needs expr and datasource")
            for var in re.findall(r"\$\{?(\w+)", t.get("expr", "")):
                if var not in names and var not in GRAFANA_VARIABLES:
                    out.append(f"{where}: uses undefined variable ${var}")
        defaults = p.get("fieldConfig", {}).get("defaults", {})
        steps = defaults.get("thresholds", {}).get("steps", [])
        if not steps or steps[0].get("value") is not None:
            out.append(f"{where}: thresholds must start with a base step (value null)")
        values = [s["value"] for s in steps[1:]]
        if any(not isinstance(v, (int, float)) for v in values) or values != sorted(values):
            out.append(f"{where}: threshold values must be ascending numbers {values}")
        if not isinstance(defaults.get("unit"), str):
            out.append(f"{where}: unit missing")
    if len(set(ids)) != len(ids):
        out.append("panel ids are not unique")
    return out
