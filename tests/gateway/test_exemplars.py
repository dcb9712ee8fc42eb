"""Latency histograms carry the trace id of sampled requests as exemplars, exposed to a scraper
that asks for OpenMetrics (Prometheus with exemplar storage does), so a dashboard panel links
from a slow bucket to the trace."""

from __future__ import annotations

import re

import httpx

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 4}


def test_latency_exemplars_link_to_the_request_trace(stub_gateway) -> None:
    h = stub_gateway
    r = httpx.post(h.url + "/v1/chat/completions", json=CHAT, headers=h.headers(), timeout=10)
    assert r.status_code == 200
    (row,) = h.rows()
    h.gateway.tracer_provider.force_flush()
    assert row.trace_id and row.trace_id in {
        format(s.context.trace_id, "032x") for s in h.exporter.get_finished_spans()
    }

    om = httpx.get(h.url + "/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"})
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    exemplars = re.findall(
        r'^gen_ai_server_request_duration_seconds_bucket\{.*\} \S+ # \{trace_id="([0-9a-f]{32})"\}', om.text, re.M
    )
    assert exemplars == [row.trace_id]
    assert om.text.rstrip().endswith("# EOF")

    plain = httpx.get(h.url + "/metrics")  # the classic text format has no exemplars
    assert plain.headers["content-type"].startswith("text/plain") and "trace_id" not in plain.text
