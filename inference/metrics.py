"""Prometheus metrics of the worker, named after vLLM's (`vllm:...`) under our prefix."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# vLLM's TTFT buckets, which users already chart.
TTFT_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1,
    2.5,
    5,
    7.5,
    10,
    20,
    40,
    80,
    160,
    640,
    2560,
)
ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
E2E_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 48, 64, 96, 128, 256)


class WorkerMetrics:
    def __init__(self, model_version: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r, lbl = self.registry, ["model_version"]
        p = "inferwatch_worker_"
        self.running = Gauge(p + "num_requests_running", "Sequences in the running batch", lbl, registry=r)
        self.waiting = Gauge(p + "num_requests_waiting", "Requests waiting for a batch slot", lbl, registry=r)
        self.kv_usage = Gauge(p + "kv_cache_usage_perc", "Fraction of KV-cache slots in use", lbl, registry=r)
        self.batch_size = Histogram(
            p + "batch_size", "Sequences per decode step", lbl, buckets=BATCH_BUCKETS, registry=r
        )
        self.ttft = Histogram(
            p + "time_to_first_token_seconds", "Arrival to first token", lbl, buckets=TTFT_BUCKETS, registry=r
        )
        self.itl = Histogram(
            p + "inter_token_latency_seconds", "Time between output tokens", lbl, buckets=ITL_BUCKETS, registry=r
        )
        self.e2e = Histogram(
            p + "e2e_request_latency_seconds", "Arrival to last token", lbl, buckets=E2E_BUCKETS, registry=r
        )
        self.queue_time = Histogram(
            p + "request_queue_time_seconds", "Time waiting for a slot", lbl, buckets=TTFT_BUCKETS, registry=r
        )
        self.prompt_tokens = Counter(p + "prompt_tokens", "Prompt tokens processed", lbl, registry=r)
        self.generation_tokens = Counter(p + "generation_tokens", "Output tokens generated", lbl, registry=r)
        self.success = Counter(
            p + "request_success",
            "Finished requests by finished_reason: stop, length, error, abort (the client left; its slot freed)",
            lbl + ["finished_reason"],
            registry=r,
        )
        self.rejected = Counter(
            p + "requests_rejected", "Requests refused before running", lbl + ["reason"], registry=r
        )
        self.faults_injected = Counter(
            p + "faults_injected",
            "Faults applied by --fault.* (drills and tests): error, latency, token_latency",
            lbl + ["kind"],
            registry=r,
        )
        self.load_time = Gauge(p + "model_load_seconds", "Model load plus warm-up time", lbl, registry=r)
        self.gpu_mem_used = Gauge(p + "gpu_memory_used_bytes", "GPU memory allocated by torch", ["gpu"], registry=r)
        self.gpu_mem_total = Gauge(p + "gpu_memory_total_bytes", "GPU memory of the device", ["gpu"], registry=r)
        self.info = Gauge(
            p + "model_info", "Served model (value 1)", ["model_version", "alias", "digest", "device"], registry=r
        )
        self.version = model_version
        self._children: dict[int, object] = {}

    def labels(self, metric):
        """The metric's child for this model version, looked up once (prometheus_client's lookup locks and hashes)."""
        child = self._children.get(id(metric))
        if child is None:
            child = self._children[id(metric)] = metric.labels(model_version=self.version)
        return child
