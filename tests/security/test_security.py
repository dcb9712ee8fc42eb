"""Security properties of the running gateway: keys never logged or stored in clear, tenant
isolation on every route that returns data, admin routes refuse tenant keys (enumerated from
the app's OpenAPI schema), /metrics behind its token, no prompt text in logs or metric labels."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import String, Text, inspect, select

from gateway.config import Limits, TenantConfig, UpstreamConfig, VersionTarget
from tests.gateway.conftest import ADMIN_KEY, Harness, gateway_server, stub_server

METRICS_TOKEN = "metrics-token-9f8e7d6c5b4a"
PROMPT_MARKER = "zebra-quokka-7731"  # a prompt nobody else would write: it must not leak anywhere


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Harness, str]]:
    """A gateway with a metrics token and traffic from two tenants; returns it and every log
    line it wrote (all loggers, DEBUG) while serving."""
    tmp = tmp_path_factory.mktemp("security")
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with stub_server() as stub:
            ups = {"stub@1": UpstreamConfig(urls=[stub.url])}
            with gateway_server(
                tmp,
                f"sqlite:///{tmp / 'l.db'}",
                ups,
                {"m": [VersionTarget(version="stub@1")]},
                tenants={"acme": TenantConfig(), "globex": TenantConfig()},
                metrics_token=METRICS_TOKEN,
                default_limits=Limits(rpm=None, tpm=None),
            ) as h:
                h.keys["admin"] = ADMIN_KEY
                new = httpx.post(h.url + "/v1/admin/keys", json={"tenant": "globex"}, headers=auth(ADMIN_KEY)).json()[
                    "key"
                ]
                h.keys["globex-2"] = new
                for who in ("acme", "globex", "globex-2", "admin"):
                    body = {
                        "model": "m",
                        "messages": [{"role": "user", "content": f"{PROMPT_MARKER} from {who}"}],
                        "max_tokens": 3,
                    }
                    assert (
                        httpx.post(h.url + "/v1/chat/completions", json=body, headers=auth(h.keys[who])).status_code
                        == 200
                    )
                    with httpx.stream(
                        "POST", h.url + "/v1/chat/completions", json=body | {"stream": True}, headers=auth(h.keys[who])
                    ) as r:
                        list(r.iter_lines())
                    httpx.post(
                        h.url + "/v1/embeddings", json={"model": "m", "input": PROMPT_MARKER}, headers=auth(h.keys[who])
                    )
                wrong = h.keys["acme"][:-6] + "XXXXXX"
                h.keys["wrong"] = wrong
                assert httpx.post(h.url + "/v1/chat/completions", json={}, headers=auth(wrong)).status_code == 401
                h.flush()
                h.log_text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in records)  # type: ignore[attr-defined]
                yield h, h.log_text
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def secrets(h: Harness) -> list[str]:
    """Every key's secret part (after 'iw-<id>-'), and the admin and metrics tokens."""
    return [k.split("-", 2)[2] if k.startswith("iw-") else k for k in h.keys.values()] + [METRICS_TOKEN]


def db_text(h: Harness) -> str:
    """Every text value of every table of the ledger database."""
    engine = h.gateway.store.engine
    out = []
    with engine.connect() as c:
        insp = inspect(engine)
        from sqlalchemy import MetaData, Table

        md = MetaData()
        for name in insp.get_table_names():
            t = Table(name, md, autoload_with=engine)
            cols = [
                col
                for col in t.columns
                if isinstance(col.type, (String, Text)) or "JSON" in type(col.type).__name__.upper()
            ]
            if cols:
                out += [str(v) for row in c.execute(select(*cols)) for v in row if v is not None]
    return "\n".join(out)


def test_keys_are_never_logged(secured):
    h, logs = secured
    assert logs  # the capture works: the gateway did log
    for s in secrets(h):
        assert s not in logs


def test_keys_are_never_stored_in_clear(secured):
    h, _ = secured
    text = db_text(h)
    assert "acme" in text  # the scan reads the tables
    for s in secrets(h):
        assert s not in text


def test_no_prompt_text_in_logs_metrics_or_ledger(secured):
    h, logs = secured
    metrics = httpx.get(h.url + "/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"}).text
    assert "inferwatch_requests_total" in metrics
    assert PROMPT_MARKER not in logs
    assert PROMPT_MARKER not in metrics
    assert PROMPT_MARKER not in db_text(h)  # no tenant opted in to storing content
    labels = set(re.findall(r'(\w+)="', metrics))
    assert not labels & {"request_id", "key", "key_id", "user", "prompt", "api_key"}


def test_metrics_requires_its_token(secured):
    h, _ = secured
    assert httpx.get(h.url + "/metrics").status_code == 401
    assert httpx.get(h.url + "/metrics", headers=auth("nope")).status_code == 401
    assert httpx.get(h.url + "/metrics", headers=auth(h.keys["admin"])).status_code == 401
    assert httpx.get(h.url + "/metrics", headers=auth(METRICS_TOKEN)).status_code == 200


def _routes(h: Harness) -> list[tuple[str, str, list[str], dict]]:
    """(method, path, tags, minimal valid JSON body) of every operation in the app's OpenAPI."""
    spec = httpx.get(h.url + "/openapi.json").json()
    out = []
    for path, ops in spec["paths"].items():
        for m, op in ops.items():
            schema = ((op.get("requestBody") or {}).get("content", {}).get("application/json") or {}).get(
                "schema"
            ) or {}
            out.append((m.upper(), path, op.get("tags", []), _minimal(spec, schema)))
    return out


def _minimal(spec: dict, schema: dict):
    """A value that validates against `schema` with only its required fields, so that
    authorisation, not validation, decides the answer."""
    if "$ref" in schema:
        return _minimal(spec, spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]])
    if "anyOf" in schema:
        return _minimal(spec, schema["anyOf"][0])
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object")
    if kind == "object":
        return {k: _minimal(spec, schema["properties"][k]) for k in schema.get("required", [])}
    if kind == "array":
        return [_minimal(spec, schema.get("items", {}))] * schema.get("minItems", 0)
    return {"string": "acme", "integer": 1, "number": 1.0, "boolean": True}.get(kind, None)


def _fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_admin_routes_refuse_tenant_keys(secured):
    h, _ = secured
    # canary routes are admin-only, except reading one analysis: any key may poll it (the CI gate)
    admin_only = [
        (m, p, b)
        for m, p, tags, b in _routes(h)
        if "admin" in tags or (p.startswith("/v1/canary") and (m, p) != ("GET", "/v1/canary/analyses/{analysis_id}"))
    ]
    assert len(admin_only) >= 12
    for method, path, body in admin_only:
        r = httpx.request(method, h.url + _fill(path), json=body, headers=auth(h.keys["acme"]))
        assert r.status_code == 403, (method, path, r.status_code, r.text[:200])
        assert r.json()["error"]["code"] == "admin_required"


def test_tenant_isolation_on_every_route_that_returns_data(secured):
    """Every GET a tenant key may call: nothing of the other tenant in the answer; asking for
    the other tenant explicitly is refused."""
    h, _ = secured
    readable = [
        p for m, p, tags, _ in _routes(h) if m == "GET" and not {"admin", "canary"} & set(tags) and p != "/metrics"
    ]
    assert {"/v1/usage", "/v1/models", "/v1/slos", "/health"} <= set(readable)
    for path in [_fill(p) for p in readable] + ["/v1/slos/availability"]:
        r = httpx.get(h.url + path, headers=auth(h.keys["acme"]))
        assert r.status_code in (200, 404) or r.json()["error"]["code"] == "admin_required", (path, r.text[:200])
        assert "globex" not in r.text, path
    own = httpx.get(h.url + "/v1/usage", headers=auth(h.keys["acme"])).json()
    assert {d["tenant"] for d in own["data"]} == {"acme"} and own["totals"]["requests"] == 3
    r = httpx.get(h.url + "/v1/usage", params={"tenant": "globex"}, headers=auth(h.keys["acme"]))
    assert r.status_code == 403
    everyone = httpx.get(h.url + "/v1/usage", headers=auth(h.keys["admin"])).json()
    assert {"acme", "globex"} <= {d["tenant"] for d in everyone["data"]}
