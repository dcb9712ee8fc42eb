"""Sloth's spec formats, read into the native form (`slo.spec` parses that).

- `version: prometheus/v1` files (Sloth's CLI): `service`, `labels`, `slos` whose SLIs are
  `events` (`error_query`, `total_query`) or `raw` (`error_ratio_query`) with `{{.window}}`,
  and `alerting` with `name`, `labels`, `annotations`, `page_alert`, `ticket_alert`. Both map
  one to one onto the native keys.
- `apiVersion: sloth.slok.dev/v1`, `kind: PrometheusServiceLevel` (its Kubernetes resource):
  the same under `spec`, spelled in camelCase (`errorQuery`, `pageAlert`, ...).

Sloth has no period in the spec (its CLI defaults to 30 days); neither has this, so 30 d.
SLI plugins (`sli.plugin`) are Sloth code, not data: refused by name.
"""

from __future__ import annotations

import re
from typing import Any

from slo.specfields import SpecError
from slo.yamlloc import LocDict, LocList, line_at

PROMETHEUS_V1 = "prometheus/v1"
K8S_API = "sloth.slok.dev/v1"
K8S_KIND = "PrometheusServiceLevel"
SLOTH_PERIOD = "30d"
_FREE_KEYS = {"labels", "annotations"}  # user names inside: never renamed


def _snake(key: Any) -> Any:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower() if isinstance(key, str) else key


def _renamed(node: Any, rename: bool) -> Any:
    """A copy of `node` with camelCase keys in snake_case (but not inside labels/annotations),
    keeping the line of every key for error messages."""
    if isinstance(node, LocDict):
        out = LocDict()
        out.line, out.key_lines = node.line, {}
        for k, v in node.items():
            nk = _snake(k) if rename else k
            out[nk] = _renamed(v, rename and k not in _FREE_KEYS)
            out.key_lines[nk] = node.key_lines[k]
        return out
    if isinstance(node, LocList):
        seq = LocList(_renamed(v, rename) for v in node)
        seq.line, seq.item_lines = node.line, list(node.item_lines)
        return seq
    return node


def _native(body: LocDict, file: str, where: str) -> LocDict:
    """The native document for a Sloth body (service, labels, slos)."""
    for i, slo in enumerate(body.get("slos") or []):
        sli = slo.get("sli") if isinstance(slo, dict) else None
        if isinstance(sli, dict) and "plugin" in sli:
            raise SpecError.at(
                file,
                line_at(body, ["slos", i, "sli", "plugin"]),
                f"{where}slos.{i}.sli.plugin: Sloth SLI plugins are not supported; "
                "write the SLI as events (error_query, total_query) or raw (error_ratio_query)",
            )
    out = LocDict()
    out.line, out.key_lines = body.line, {}
    defaults = LocDict(window=SLOTH_PERIOD)
    defaults.line, defaults.key_lines = body.line, {"window": body.line}
    if "labels" in body:
        defaults["labels"] = body["labels"]
        defaults.key_lines["labels"] = body.key_lines["labels"]
    out["defaults"], out.key_lines["defaults"] = defaults, body.line
    for key in ("service", "slos"):
        if key in body:
            out[key], out.key_lines[key] = body[key], body.key_lines[key]
    unknown = sorted(set(body) - {"version", "service", "labels", "slos"})
    if unknown:
        raise SpecError.at(file, line_at(body, [unknown[0]]), f"{where}{unknown[0]}: not a Sloth spec field")
    return out


def from_prometheus_v1(doc: LocDict, file: str) -> LocDict:
    """A Sloth `prometheus/v1` document as a native one."""
    return _native(doc, file, "")


def from_k8s(doc: LocDict, file: str) -> LocDict:
    """A Sloth PrometheusServiceLevel resource as a native document."""
    if doc.get("kind") != K8S_KIND:
        raise SpecError.at(
            file, line_at(doc, ["kind"]), f"kind {doc.get('kind')!r}: of {K8S_API} only {K8S_KIND} is read"
        )
    spec = doc.get("spec")
    if not isinstance(spec, LocDict):
        raise SpecError.at(file, doc.line, f"{K8S_KIND} needs a spec mapping")
    return _native(_renamed(spec, True), file, "spec.")
