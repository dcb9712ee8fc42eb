"""Gateway configuration: tenants, limits, aliases, upstreams, prices, timeouts."""

from __future__ import annotations

import typing
from collections.abc import Callable, Hashable, Sequence
from typing import Annotated, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from ledger.governance import VersionTarget

T = TypeVar("T")


def first_repeat(items: Sequence[T], key: Callable[[T], Hashable]) -> Hashable | None:
    """The first natural key that occurs twice in `items`, or None."""
    seen: set[Hashable] = set()
    for item in items:
        k = key(item)
        if k in seen:
            return k
        seen.add(k)
    return None


def _each_once(noun: str, key: Callable[[T], Hashable], where: str) -> AfterValidator:
    # A repeated natural key would violate a unique index (alias targets) or count one
    # budget twice: refuse it as bad input (400) before anything is written.
    def check(items: list[T]) -> list[T]:
        repeat = first_repeat(items, key)
        if repeat is not None:
            raise ValueError(f"{noun} {repeat} appears twice in {where}")
        return items

    return AfterValidator(check)


Priority = Literal["interactive", "batch"]
PRIORITIES: tuple[Priority, ...] = ("interactive", "batch")
# seconds from arrival until the gateway answers 504 deadline_exceeded
Timeout = Annotated[float, Field(gt=0, le=86_400)]

# Why a request left a version for the next one of its fallback chain (a bounded label set).
FallbackReason = Literal["server_error", "timeout", "unavailable", "queue_full", "context_window"]
FALLBACK_REASONS: tuple[FallbackReason, ...] = typing.get_args(FallbackReason)


class Limits(BaseModel):
    rpm: int | None = Field(default=600, ge=1, description="requests per minute; None for unlimited")
    tpm: int | None = Field(default=1_000_000, ge=1, description="tokens (prompt + completion) per minute")
    max_body_bytes: int = Field(default=1_000_000, ge=1)
    max_prompt_tokens: int = Field(default=32_768, ge=1, description="estimated from the text at the gateway")
    max_concurrent_requests: int | None = Field(
        default=None,
        ge=1,
        description=("requests of the tenant in progress at once on one gateway replica (429 beyond); None: no cap"),
    )


class Budget(BaseModel):
    """A spend (USD) or token budget per UTC day or calendar month, for a tenant or one of its keys."""

    period: Literal["day", "month"]
    kind: Literal["spend", "tokens"] = "spend"
    limit: float = Field(gt=0, description="US dollars for spend, prompt + completion tokens for tokens")
    soft_percent: float | None = Field(
        default=80.0, gt=0, le=100, description="notify the budget webhooks once per period at this share"
    )
    hard: bool = Field(default=True, description="refuse requests with 429 budget_exceeded once used up")
    key_id: str | None = Field(default=None, description="only this key's requests; None: the whole tenant")

    @property
    def name(self) -> str:
        return f"{self.period}-{self.kind}" + (f"-{self.key_id}" if self.key_id else "")


Budgets = Annotated[list[Budget], _each_once("budget", lambda b: b.name, "budgets")]


class TenantConfig(BaseModel):
    name: str | None = None
    limits: Limits | None = None  # None: the gateway's default limits
    store_content: bool = False  # opt-in to storing (redacted) prompts and completions
    cache: bool = False  # opt-in to the response cache (gateway.cache.enabled must be on too)
    budgets: Budgets | None = None  # None: the gateway's default budgets
    priority: Priority = "interactive"  # batch: shed first when upstreams are full
    timeout_s: Timeout | None = None  # default deadline of its requests; None: the gateway's request_timeout_s


class CacheConfig(BaseModel):
    """Exact-match response cache for deterministic requests (temperature 0 or a seed)."""

    enabled: bool = Field(default=False, description="master switch; each tenant still opts in")
    max_entries: int = Field(default=10_000, ge=1)
    max_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1, description="in-process total; with Redis, its maxmemory bounds the total"
    )
    max_entry_bytes: int = Field(default=1024 * 1024, ge=1, description="larger responses are not cached")
    ttl_s: float = Field(default=3600.0, gt=0)
    hit_cost_usd: float = Field(default=0.0, ge=0, description="cost recorded for a request served from the cache")
    shared_across_tenants: bool = Field(default=False, description="tenants that opted in share entries")


class ConfiguredKey(BaseModel):
    """A key provisioned from configuration: only its SHA-256 is written down (from
    `inferwatch keys hash`), never the key itself."""

    tenant: str
    secret_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    admin: bool = False


Targets = Annotated[list[VersionTarget], _each_once("version", lambda t: t.version, "targets")]


class UpstreamConfig(BaseModel):
    """One model version served by one or more OpenAI-compatible replicas."""

    urls: list[str] = Field(default_factory=list, description="replicas by URL")
    discover: list[str] = Field(
        default_factory=list,
        description=(
            "base URLs whose host name is resolved again at every health check, each address one replica "
            "(a Kubernetes headless Service: replicas come and go with the autoscaler)"
        ),
    )
    served_model: str | None = Field(
        default=None, description="model name to send upstream; discovered from /v1/models if unset"
    )
    api_key: str | None = None
    provider: str = Field(default="inferwatch", description="gen_ai.provider.name, e.g. mistral_ai, vllm")
    max_parallel_requests: int | None = Field(
        default=None,
        ge=1,
        description=(
            "requests in flight to each replica at once; more wait at the gateway, interactive first, and batch "
            "is shed first (see `overload`); None: no gateway-side limit"
        ),
    )
    context_window: int | None = Field(
        default=None,
        ge=1,
        description=(
            "tokens of the version's context; None: what the worker reports as max_model_len (a longer prompt "
            "takes the alias's context_window fallback)"
        ),
    )
    stream_usage: Literal["continuous", "final"] = Field(
        default="continuous",
        description="usage asked for in streams: in every chunk (our worker, vLLM), so a stream that breaks is "
        "still counted; 'final' for an upstream that refuses stream_options.continuous_usage_stats",
    )

    @model_validator(mode="after")
    def _has_replicas(self) -> "UpstreamConfig":
        if not self.urls and not self.discover:
            raise ValueError("an upstream needs `urls`, `discover` or both")
        for url in self.discover:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"discover: {url!r} is not an http(s) URL with a host name")
        return self


class FallbackChain(BaseModel):
    """Where an alias's request goes when its version cannot answer: the targets in order,
    each an alias (its weighted versions) or a version. Written as a list, it falls back on
    every reason."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error, not a silent default

    targets: list[str] = Field(min_length=1, description="aliases or versions, tried in this order")
    reasons: list[FallbackReason] = Field(
        default_factory=lambda: list(FALLBACK_REASONS),
        min_length=1,
        description=(
            "server_error (5xx), timeout (no first byte in time), unavailable (no healthy replica, breakers open), "
            "queue_full (the worker's 503, or no free slot of max_parallel_requests), context_window (prompt too long)"
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, data: object) -> object:
        return {"targets": data} if isinstance(data, list) else data


class OverloadConfig(BaseModel):
    """Admission to versions whose upstreams set max_parallel_requests: interactive requests
    take free slots first; batch requests hold at most `batch_share` of them and are shed
    first when requests wait."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error, not a silent default

    batch_share: float = Field(default=0.5, gt=0, le=1, description="share of a version's slots batch may hold")
    max_waiting: int = Field(
        default=256,
        ge=0,
        description=(
            "requests waiting for a slot per version; a full queue sheds a waiting batch request for an interactive one"
        ),
    )
    batch_max_wait_s: float = Field(default=2.0, ge=0, description="a batch request waiting longer is shed (503)")
    interactive_max_wait_s: float = Field(default=30.0, ge=0, description="an interactive request waiting longer: 503")
    retry_after_s: int = Field(default=2, ge=1, description="Retry-After of a shed request")


class Price(BaseModel):
    input_per_1m: float = Field(default=0.0, ge=0.0)
    output_per_1m: float = Field(default=0.0, ge=0.0)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_1m + completion_tokens * self.output_per_1m) / 1e6


class GatewayConfig(BaseModel):
    aliases: dict[str, Targets] = Field(default_factory=dict)
    upstreams: dict[str, UpstreamConfig] = Field(default_factory=dict, description="by model version")
    prices: dict[str, Price] = Field(
        default_factory=dict, description="by model version or alias; 'default' applies otherwise"
    )
    tenants: dict[str, TenantConfig] = Field(default_factory=dict)
    keys: dict[str, ConfiguredKey] = Field(
        default_factory=dict, description="by key id (the 12 hex characters after 'iw-')"
    )
    default_limits: Limits = Limits()
    api_max_body_bytes: int = Field(
        default=256 * 1024,
        ge=1,
        description=(
            "bodies of the admin, canary, SLO and report routes; the OpenAI routes use the tenant's max_body_bytes"
        ),
    )
    connect_timeout_s: float = 5.0
    first_byte_timeout_s: float = 120.0
    request_timeout_s: float = 600.0
    max_retries: int = Field(default=1, ge=0, description="other replicas tried before the first byte")
    breaker_failures: int = Field(default=5, ge=1, description="consecutive failures that open the circuit")
    breaker_open_s: float = Field(default=10.0, gt=0)
    health_interval_s: float = Field(default=5.0, gt=0)
    state_refresh_s: float = Field(
        default=2.0, gt=0, description="how often alias weights are re-read from the database"
    )
    key_cache_ttl_s: float = Field(default=5.0, ge=0, description="a revoked key stops working within this time")
    metrics_token: str | None = Field(
        default=None, description="if set, /metrics requires 'Authorization: Bearer <token>'"
    )
    otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP traces endpoint; None keeps spans in-process"
    )
    redis_url: str | None = Field(
        default=None, description="shared rate limits, budget counters and cache across replicas; None: in-process"
    )
    redis_retry_s: float = Field(
        default=5.0, gt=0, description="after Redis fails, the local fallback is used this long before trying again"
    )
    cache: CacheConfig = CacheConfig()
    default_budgets: Budgets = Field(default_factory=list, description="for tenants without budgets of their own")
    budget_refresh_s: float = Field(default=2.0, gt=0, description="how often spend is re-read from the ledger")
    budget_webhooks: list[str] = Field(
        default_factory=list, description="notified once per period when a soft budget is crossed"
    )
    fallbacks: dict[str, FallbackChain] = Field(
        default_factory=dict,
        description=(
            "by alias: where its requests go when their version cannot answer "
            "(LiteLLM's fallbacks and context_window_fallbacks)"
        ),
    )
    overload: OverloadConfig = OverloadConfig()

    @model_validator(mode="after")
    def _aliases_point_at_upstreams(self) -> "GatewayConfig":
        for alias, targets in self.aliases.items():
            for t in targets:
                if t.version not in self.upstreams:
                    raise ValueError(f"alias {alias!r} targets version {t.version!r}, which has no upstream")
        for alias, chain in self.fallbacks.items():
            if alias not in self.aliases:
                raise ValueError(f"fallbacks.{alias}: no alias of that name")
            for target in chain.targets:
                if target in self.aliases and target in self.upstreams:
                    raise ValueError(f"fallbacks.{alias}: {target!r} is both an alias and a version")
                if target not in self.aliases and target not in self.upstreams:
                    raise ValueError(
                        f"fallbacks.{alias}: {target!r} is neither an alias nor a version with an upstream"
                    )
                if target == alias:
                    raise ValueError(f"fallbacks.{alias}: an alias cannot fall back to itself")
        return self

    def price_for(self, version: str | None, alias: str) -> Price:
        return self.prices.get(version or "") or self.prices.get(alias) or self.prices.get("default") or Price()
