"""Prometheus metrics of one server, in their own registry so that several apps can coexist."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    """Requests by route and status, request latency, batch sizes, queue depth and tokens.

    >>> m = Metrics()
    >>> m.requests.labels(route="/classify", status="200").inc()
    >>> b"clearpipe_requests_total" in m.render()[0]
    True
    """

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "clearpipe_requests",
            "HTTP requests by route and status code.",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "clearpipe_request_latency_seconds",
            "Time from request to response, by route.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "clearpipe_batch_size",
            "Inputs per micro-batch run by the engine.",
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "clearpipe_queue_depth", "Inputs waiting for a micro-batch.", registry=self.registry
        )
        self.tokens = Counter(
            "clearpipe_tokens",
            "Tokens run through the model (special tokens included).",
            registry=self.registry,
        )
        self.dropped = Counter(
            "clearpipe_dropped",
            "Requests dropped before their batch ran, by reason (too_large, queue_full, timeout, client_gone).",
            ["reason"],
            registry=self.registry,
        )

    def render(self) -> tuple[bytes, str]:
        """The metrics in Prometheus' text format, with their content type."""
        return generate_latest(self.registry), self.content_type
