"""`build(slos, out_dir)`: the Grafana JSON of every dashboard and the provisioning files.

out_dir/dashboards/<uid>.json, out_dir/provisioning/datasources/inferwatch.yaml,
out_dir/provisioning/dashboards/inferwatch.yaml.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dashboards import provisioning
from dashboards.config import DashboardsConfig
from dashboards.definitions import all_dashboards
from dashboards.grafana import render
from dashboards.model import Dashboard
from slo.model import SLO


@dataclass
class BuildResult:
    dashboards: list[Dashboard]
    dashboard_files: list[Path]
    datasource_file: Path
    provider_file: Path

    def files(self) -> list[Path]:
        return [*self.dashboard_files, self.datasource_file, self.provider_file]


def build(slos: Sequence[SLO], out_dir: str | Path, config: DashboardsConfig | None = None) -> BuildResult:
    cfg = config or DashboardsConfig()
    out = Path(out_dir)
    dash_dir = out / "dashboards"
    dash_dir.mkdir(parents=True, exist_ok=True)
    dashboards = all_dashboards(slos, cfg)
    files = []
    for d in dashboards:
        path = dash_dir / f"{d.uid}.json"
        path.write_text(json.dumps(render(d, cfg.datasource_uid), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        files.append(path)
    ds = out / "provisioning" / "datasources" / "inferwatch.yaml"
    prov = out / "provisioning" / "dashboards" / "inferwatch.yaml"
    for path, data in ((ds, provisioning.datasource(cfg)), (prov, provisioning.dashboard_provider(cfg, dash_dir))):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(provisioning.dump(data), encoding="utf-8")
    return BuildResult(dashboards, files, ds, prov)
