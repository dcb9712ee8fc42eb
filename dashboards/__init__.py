"""Grafana dashboards as code: executive, on-call and debug, generated from the SLO specs
and the metric catalog (never hand-edited).

    dashboards.definitions   the three dashboards as specs (dashboards.model), SLO panels from slo_panels
    dashboards.grafana       specs -> Grafana JSON (grafanalib)
    dashboards.build         JSON files plus Grafana provisioning (data source, dashboard provider)
    dashboards.check         --check: metrics defined by our code, PromQL accepted by promtool
    dashboards.query         the panel queries against Prometheus' HTTP API
    dashboards.preview       the same queries drawn as PNGs (matplotlib)
    dashboards.cli           `inferwatch dashboards build|preview`
"""
