"""Every error path of the gateway, with its status and OpenAI-format body, against stub upstreams."""

from __future__ import annotations

import collections
import json
import time

import httpx
import openai
import pytest
from sqlalchemy import text

from gateway.config import UpstreamConfig, VersionTarget
from tests.gateway.conftest import ADMIN_KEY, gateway_server, stub_server
from tests.servers import wait_until
from tests.stub_upstream import prompt_tokens
from tests.prom_text import samples

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi there"}], "max_tokens": 4}


def post(h, body=CHAT, tenant="acme", path="/v1/chat/completions", **kw) -> httpx.Response:
    headers = {**h.headers(tenant), **kw.pop("headers", {})}
    return httpx.post(h.url + path, json=body, headers=headers, timeout=30, **kw)


def assert_error(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["message"] and err["type"]
    assert "Traceback" not in r.text
    return err


# ---- auth -----------------------------------------------------------------------------------


def test_missing_and_invalid_keys_are_401(stub_gateway):
    h = stub_gateway
    assert_error(httpx.post(h.url + "/v1/chat/completions", json=CHAT), 401, "missing_api_key")
    assert_error(
        httpx.post(h.url + "/v1/chat/completions", json=CHAT, headers={"authorization": "Bearer sk-wrong"}),
        401,
        "invalid_api_key",
    )
    forged = h.keys["acme"][:-4] + "AAAA"
    assert_error(
        httpx.post(h.url + "/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {forged}"}),
        401,
        "invalid_api_key",
    )
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=h.url + "/v1", api_key="nope", max_retries=0).models.list()


def test_keys_are_stored_only_as_hashes(stub_gateway):
    h = stub_gateway
    with h.gateway.store.engine.connect() as c:
        dump = " ".join(str(v) for row in c.execute(text("select * from api_keys")) for v in row)
    for secret in h.keys.values():
        assert secret not in dump
        assert secret.split("-")[1] in dump  # the public key id is there


def test_admin_routes_refuse_tenant_keys_and_manage_keys(stub_gateway):
    h = stub_gateway
    assert_error(httpx.get(h.url + "/v1/admin/tenants", headers=h.headers()), 403, "admin_required")
    assert_error(
        httpx.post(h.url + "/v1/admin/keys", json={"tenant": "acme"}, headers=h.headers()), 403, "admin_required"
    )
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    r = httpx.post(h.url + "/v1/admin/tenants", json={"id": "initech", "limits": {"rpm": 5}}, headers=admin)
    assert r.status_code == 201
    assert "initech" in {t["id"] for t in httpx.get(h.url + "/v1/admin/tenants", headers=admin).json()["data"]}
    new = httpx.post(h.url + "/v1/admin/keys", json={"tenant": "initech"}, headers=admin).json()
    assert new["key"].startswith("iw-")
    assert_error(
        httpx.post(h.url + "/v1/admin/keys", json={"tenant": "nobody"}, headers=admin), 404, "tenant_not_found"
    )
    h.keys["initech"] = new["key"]
    assert post(h, tenant="initech").status_code == 200
    listed = httpx.get(h.url + "/v1/admin/keys", params={"tenant": "initech"}, headers=admin).json()["data"]
    assert [k["key_id"] for k in listed] == [new["key_id"]] and "key" not in listed[0]
    assert httpx.delete(h.url + f"/v1/admin/keys/{new['key_id']}", headers=admin).json()["revoked"] is True
    assert_error(post(h, tenant="initech"), 401, "invalid_api_key")  # key cache TTL is 0 in tests
    assert_error(httpx.delete(h.url + "/v1/admin/keys/doesnotexist", headers=admin), 404, "key_not_found")


# ---- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body,param",
    [
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": "lots"}, "max_tokens"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": -1}, "temperature"),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
    ],
)
def test_invalid_bodies_are_400(stub_gateway, body, param):
    err = assert_error(post(stub_gateway, body), 400, "invalid_request")
    assert err["param"] == param


def test_malformed_json_and_non_object_are_400(stub_gateway):
    h = stub_gateway
    assert_error(httpx.post(h.url + "/v1/chat/completions", content=b"{oops", headers=h.headers()), 400, "invalid_json")
    assert_error(
        httpx.post(h.url + "/v1/chat/completions", content=b"[1,2]", headers=h.headers()), 400, "invalid_request"
    )
    assert_error(
        httpx.post(h.url + "/v1/chat/completions", content=b"\xff\xfe", headers=h.headers()), 400, "invalid_json"
    )


def test_unknown_model_is_404(stub_gateway):
    assert_error(post(stub_gateway, CHAT | {"model": "gpt-17"}), 404, "model_not_found")


def test_body_too_large_is_413(stub_gateway):
    big = CHAT | {"messages": [{"role": "user", "content": "x" * 5000}]}
    assert_error(post(stub_gateway, big, tenant="tiny"), 413, "request_too_large")
    assert post(stub_gateway, big, tenant="acme").status_code == 200  # tenant limits do not leak


def test_prompt_too_long_is_400(stub_gateway):
    long = CHAT | {"messages": [{"role": "user", "content": "word " * 100}]}
    err = assert_error(post(stub_gateway, long, tenant="tiny"), 400, "prompt_too_long")
    assert "50" in err["message"]


def test_rate_limit_is_429_with_retry_after_and_headers(stub_gateway):
    h = stub_gateway
    ok = [post(h, tenant="tiny") for _ in range(3)]
    assert all(r.status_code == 200 for r in ok)
    assert [r.headers["x-ratelimit-remaining-requests"] for r in ok] == ["2", "1", "0"]
    r = post(h, tenant="tiny")
    assert_error(r, 429, "rate_limit_exceeded")
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert r.headers["x-ratelimit-limit-requests"] == "3"
    assert post(h, tenant="acme").status_code == 200  # other tenants unaffected
    rows = h.rows()
    assert [r.status_code for r in rows if r.tenant == "tiny"] == [200, 200, 200, 429]
    assert rows[3].error_type == "rate_limited"
    assert h.metric("inferwatch_rate_limited_total", tenant="tiny", limit="requests") == 1


# ---- upstream trouble --------------------------------------------------------------------------


def test_upstream_4xx_passes_through_and_5xx_is_recorded(stub_gateway, stub):
    h = stub_gateway
    stub.behaviour.fail_status = 400
    r = post(h)
    assert r.status_code == 400 and "stub failure" in r.json()["error"]["message"]
    stub.behaviour.fail_status = 500
    assert post(h).status_code == 500
    rows = h.rows()
    assert [(r.status_code, r.error_type) for r in rows] == [(400, "upstream_rejected"), (500, "upstream_error")]


def test_slow_upstream_times_out_with_504(stub_gateway, stub):
    stub.behaviour.delay_s = 3.0  # first byte timeout is 1 s in this gateway
    assert_error(post(stub_gateway), 504, "upstream_timeout")
    [row] = stub_gateway.rows()
    assert row.error_type == "timeout" and row.status_code == 504


def test_no_healthy_upstream_is_503_with_retry_after(stub_gateway, stub):
    h = stub_gateway
    stub.behaviour.healthy = False
    deadline = time.monotonic() + 10
    while any(r.healthy for r in h.gateway.pools.all_replicas()) and time.monotonic() < deadline:
        time.sleep(0.05)
    r = post(h)
    assert_error(r, 503, "no_healthy_upstream")
    assert r.headers["retry-after"] == "5"
    assert h.metric("inferwatch_upstream_healthy", model_alias="m", model_version="stub@1", upstream=stub.url) == 0


def test_retry_on_another_replica_before_first_byte(tmp_path):
    with stub_server() as bad, stub_server() as good:
        bad.behaviour.fail_status = 503
        ups = {"stub@1": UpstreamConfig(urls=[bad.url, good.url])}
        with gateway_server(
            tmp_path, f"sqlite:///{tmp_path / 'l.db'}", ups, {"m": [VersionTarget(version="stub@1")]}
        ) as h:
            statuses = [post(h).status_code for _ in range(6)]
            assert statuses == [200] * 6
            rows = h.rows()
            assert all(r.upstream == good.url for r in rows)
            assert any(r.retries == 1 for r in rows)
            assert h.metric("inferwatch_upstream_retries_total", upstream=good.url) >= 1


def test_circuit_breaker_opens_after_consecutive_failures(tmp_path):
    with stub_server() as bad:
        bad.behaviour.fail_status = 502
        ups = {"stub@1": UpstreamConfig(urls=[bad.url])}
        with gateway_server(
            tmp_path,
            f"sqlite:///{tmp_path / 'l.db'}",
            ups,
            {"m": [VersionTarget(version="stub@1")]},
            breaker_failures=3,
            breaker_open_s=60,
            max_retries=0,
            health_interval_s=0.2,
        ) as h:
            codes = [post(h).status_code for _ in range(5)]
            assert codes[:3] == [502, 502, 502]
            assert codes[3:] == [503, 503]  # open circuit: not even tried
            assert bad.behaviour.requests == 3
            wait_until(  # a health check publishes the state
                lambda: h.metric("inferwatch_circuit_breaker_state", upstream=bad.url) == 2, "the breaker gauge"
            )


def test_upstream_dying_mid_stream_ends_with_error_event(stub_gateway, stub):
    h = stub_gateway
    stub.behaviour.die_after_chunks = 2
    body = CHAT | {"stream": True, "max_tokens": 10}
    with httpx.stream("POST", h.url + "/v1/chat/completions", json=body, headers=h.headers(), timeout=30) as r:
        assert r.status_code == 200
        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert json.loads(events[-1])["error"]["code"] == "upstream_disconnected"
    assert sum(1 for e in events if "choices" in e) == 2
    assert not any(
        "usage" in json.loads(e) for e in events
    )  # asked upstream for running usage, never shown to this client
    assert stub.behaviour.seen_bodies[-1]["stream_options"] == {"include_usage": True, "continuous_usage_stats": True}
    [row] = h.rows()
    assert (row.status_code, row.error_type, row.stream) == (502, "upstream_disconnected", True)
    # billed for the two chunks it got, by the upstream's own running count
    assert (row.prompt_tokens, row.completion_tokens, row.partial, row.usage_estimated) == (
        prompt_tokens(body),
        2,
        True,
        False,
    )
    assert row.cost_usd == pytest.approx((prompt_tokens(body) * 2.0 + 2 * 6.0) / 1e6)
    assert row.ttft_s is not None and row.tpot_s is not None and row.ttft_s + row.tpot_s <= row.latency_s
    stub.behaviour.die_after_chunks = None
    assert post(h).status_code == 200  # the gateway keeps serving
    assert not h.rows()[-1].partial


def test_stream_of_an_upstream_without_usage_is_counted_and_marked_estimated(stub_gateway, stub):
    h = stub_gateway
    stub.behaviour.reports_usage = False
    stub.behaviour.die_after_chunks = 3
    with httpx.stream(
        "POST",
        h.url + "/v1/chat/completions",
        json=CHAT | {"stream": True, "max_tokens": 10},
        headers=h.headers(),
        timeout=30,
    ) as r:
        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert sum(1 for e in events if "choices" in e) == 3
    stub.behaviour.die_after_chunks = None
    list(
        openai.OpenAI(base_url=h.url + "/v1", api_key=h.keys["acme"], max_retries=0).chat.completions.create(
            model="m", messages=CHAT["messages"], max_tokens=5, stream=True
        )
    )
    broken, whole = h.rows()
    estimate = (len(b"hi there") + 3) // 4  # the gateway's prompt estimate
    assert (broken.prompt_tokens, broken.completion_tokens, broken.partial, broken.usage_estimated) == (
        estimate,
        3,
        True,
        True,
    )
    assert (whole.prompt_tokens, whole.completion_tokens, whole.partial, whole.usage_estimated) == (
        estimate,
        5,
        False,
        True,
    )
    assert broken.cost_usd == pytest.approx((estimate * 2.0 + 3 * 6.0) / 1e6)


def test_client_asking_for_final_usage_gets_only_the_final_usage_chunk(stub_gateway, stub):
    h = stub_gateway
    c = openai.OpenAI(base_url=h.url + "/v1", api_key=h.keys["acme"], max_retries=0)
    final = list(
        c.chat.completions.create(
            model="m", messages=CHAT["messages"], max_tokens=5, stream=True, stream_options={"include_usage": True}
        )
    )
    assert [x.usage is not None for x in final] == [False] * 5 + [True] and final[-1].choices == []
    running = list(
        c.chat.completions.create(
            model="m",
            messages=CHAT["messages"],
            max_tokens=5,
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"stream_options": {"include_usage": True, "continuous_usage_stats": True}},
        )
    )
    # running usage as asked (the output safety guard re-cuts held-back text into pieces of its own, which carry none)
    counts = [x.usage.completion_tokens for x in running if x.usage is not None]
    assert counts == sorted(counts) and counts[-2:] == [5, 5] and running[-1].choices == []
    assert [r.completion_tokens for r in h.rows()] == [5, 5]


def test_client_disconnect_mid_stream_is_recorded(stub_gateway, stub):
    h = stub_gateway
    stub.behaviour.chunk_delay_s = 0.01
    body = CHAT | {"stream": True, "max_tokens": 5000}
    with httpx.stream("POST", h.url + "/v1/chat/completions", json=body, headers=h.headers(), timeout=30) as r:
        lines = r.iter_lines()
        next(lines)
    deadline = time.monotonic() + 15
    rows = []
    while time.monotonic() < deadline and not rows:
        rows = h.rows()
    [row] = rows
    assert row.client_disconnected and row.status_code == 499 and row.error_type == "client_disconnect"


# ---- routing ----------------------------------------------------------------------------------


def test_weighted_routing_and_sticky_request_ids(tmp_path):
    with stub_server("v-a") as a, stub_server("v-b") as b:
        ups = {"v-a": UpstreamConfig(urls=[a.url]), "v-b": UpstreamConfig(urls=[b.url])}
        aliases = {"m": [VersionTarget(version="v-a", weight=3), VersionTarget(version="v-b", weight=1)]}
        with gateway_server(
            tmp_path, f"sqlite:///{tmp_path / 'l.db'}", ups, aliases, default_limits={"rpm": 10_000}
        ) as h:
            counts = collections.Counter(post(h).headers["x-model-version"] for _ in range(200))
            assert counts["v-a"] + counts["v-b"] == 200
            assert 0.62 < counts["v-a"] / 200 < 0.88  # 0.75 expected; bounds are > 4 sigma wide
            for i in range(5):
                seen = {post(h, headers={"x-request-id": f"sticky-{i}"}).headers["x-model-version"] for _ in range(5)}
                assert len(seen) == 1
            # weights set in the database (as a rollout does) reach the router without a restart
            h.gateway.store.set_alias(
                "m", [VersionTarget(version="v-a", weight=0), VersionTarget(version="v-b", weight=1)]
            )
            deadline = time.monotonic() + 10
            while [t.version for t in h.gateway.aliases.aliases["m"]] != ["v-b"] and time.monotonic() < deadline:
                time.sleep(0.05)
            assert {post(h).headers["x-model-version"] for _ in range(20)} == {"v-b"}


def test_slo_thresholds_are_histogram_buckets(stub_gateway):
    h = stub_gateway
    with httpx.stream("POST", h.url + "/v1/chat/completions", json=CHAT | {"stream": True}, headers=h.headers()) as r:
        list(r.iter_lines())
    h.flush()
    text = httpx.get(h.url + "/metrics").text

    def bounds(name: str) -> set[str]:
        return {s.labels["le"] for s in samples(text, name + "_bucket")}

    assert "2.0" in bounds("gen_ai_server_time_to_first_token_seconds")  # the default TTFT <= 2 s SLO
    assert "10.0" in bounds("gen_ai_server_request_duration_seconds")  # the default end-to-end <= 10 s SLO
    assert "2.0" not in bounds("gen_ai_client_token_usage")


def test_keys_provisioned_from_config_by_hash(tmp_path, stub):
    from ledger import keys as key_util
    from gateway.config import ConfiguredKey

    new = key_util.generate()
    ups = {"stub@1": UpstreamConfig(urls=[stub.url])}
    cfg_keys = {new.key_id: ConfiguredKey(tenant="ops", secret_sha256=new.secret_hash)}
    with gateway_server(
        tmp_path, f"sqlite:///{tmp_path / 'l.db'}", ups, {"m": [VersionTarget(version="stub@1")]}, keys=cfg_keys
    ) as h:
        r = httpx.post(h.url + "/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {new.secret}"})
        assert r.status_code == 200
        assert h.rows()[-1].tenant == "ops"
        wrong = new.secret[:-2] + ("AA" if not new.secret.endswith("AA") else "BB")
        assert_error(
            httpx.post(h.url + "/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {wrong}"}),
            401,
            "invalid_api_key",
        )
