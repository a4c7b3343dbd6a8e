"""Telemetry: the metrics every component exports, its health endpoints and its logs.

A low layer (beside ``devices``): the gateway, the workers, the sink and the clinic all use
it, and it imports none of them. prometheus-client is the Prometheus project's own Python
client; aiohttp serves the endpoint on the component's event loop (docs/OPERATIONS.md).
"""

from ._catalogue import (
    BURST_BUCKETS,
    LATENCY_BUCKETS,
    ClinicMetrics,
    ConsumerMetrics,
    DeadLetterMetrics,
    GatewayMetrics,
    SinkMetrics,
    WebhookMetrics,
    WorkerMetrics,
    exported_metric_names,
)
from ._logs import (
    JsonLogFormatter,
    configure_logging,
    correlated,
    current_correlation_id,
    logging_config,
    new_correlation_id,
)
from ._registry import ComponentRegistry, veille_version
from ._server import ReadinessChecks, serve_telemetry

__all__ = [
    # metrics
    "ComponentRegistry",
    "veille_version",
    "GatewayMetrics",
    "WorkerMetrics",
    "SinkMetrics",
    "ClinicMetrics",
    "WebhookMetrics",
    "ConsumerMetrics",
    "DeadLetterMetrics",
    "LATENCY_BUCKETS",
    "BURST_BUCKETS",
    "exported_metric_names",
    # the endpoint
    "ReadinessChecks",
    "serve_telemetry",
    # logs
    "configure_logging",
    "logging_config",
    "JsonLogFormatter",
    "correlated",
    "current_correlation_id",
    "new_correlation_id",
]
