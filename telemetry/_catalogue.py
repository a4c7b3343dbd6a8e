"""Every metric Veille exports, one class per component, declared once.

Prometheus conventions: ``veille_`` prefix, base units (seconds, bytes), ``_total`` on
counters, and no patient, device or person in a label (a care unit is a ward, not a person).
A class takes the component's registry, so tests and the dashboard check read the same names.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ._registry import ComponentRegistry

__all__ = [
    "BURST_BUCKETS",
    "LATENCY_BUCKETS",
    "ClinicMetrics",
    "ConsumerMetrics",
    "DeadLetterMetrics",
    "GatewayMetrics",
    "SinkMetrics",
    "WebhookMetrics",
    "WorkerMetrics",
    "exported_metric_names",
]

# Kafka confirmations take milliseconds; a stalled broker, the produce timeout (15 s).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# Messages per gateway burst and records per group or sink batch: 1 up to a few thousand.
BURST_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


class DeadLetterMetrics:
    """``veille_dead_letters_total``: shared by the three stages that dead-letter."""

    def __init__(self, registry: CollectorRegistry, stage: str) -> None:
        self._stage = stage
        self.dead_letters = Counter(
            "veille_dead_letters",
            "Messages or records set aside as dead letters, by stage and reason",
            ["stage", "reason"],
            registry=registry,
        )

    def count(self, reasons: Iterable[str]) -> None:
        for reason in reasons:
            self.dead_letters.labels(self._stage, reason).inc()


class GatewayMetrics(DeadLetterMetrics):
    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(registry, "gateway")
        self.received = Counter(
            "veille_gateway_messages_received", "MQTT messages received", registry=registry
        )
        self.redelivered = Counter(
            "veille_gateway_messages_redelivered",
            "MQTT messages received with the DUP flag (an earlier session had not acked them)",
            registry=registry,
        )
        self.forwarded = Counter(
            "veille_gateway_messages_forwarded",
            "MQTT messages carried in Kafka records Kafka confirmed",
            registry=registry,
        )
        self.acknowledged = Counter(
            "veille_gateway_messages_acknowledged",
            "MQTT messages PUBACKed to the broker after Kafka confirmed them",
            registry=registry,
        )
        self.records_sent = Counter(
            "veille_gateway_records_sent", "Kafka records confirmed (raw topic)", registry=registry
        )
        self.send_failures = Counter(
            "veille_gateway_send_failures",
            "Kafka sends that failed and were retried (nothing acknowledged meanwhile)",
            registry=registry,
        )
        self.burst = Histogram(
            "veille_gateway_burst_messages",
            "MQTT messages per burst (one Kafka record per raw partition each)",
            buckets=BURST_BUCKETS,
            registry=registry,
        )
        self.produce = Histogram(
            "veille_gateway_produce_seconds",
            "A burst's records sent until Kafka confirmed them all",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.awaiting = Gauge(
            "veille_gateway_messages_awaiting_confirmation",
            "MQTT messages received and not yet confirmed by Kafka",
            registry=registry,
        )
        self.connected = Gauge(
            "veille_gateway_mqtt_connected", "1 while the MQTT session is up", registry=registry
        )


class ConsumerMetrics:
    """Consumer-group metrics of the workers and the sink."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.lag = Gauge(
            "veille_consumer_lag",
            "Records in a partition the group has not committed yet (every member reports "
            "every partition: aggregate with max)",
            ["group", "topic", "partition"],
            registry=registry,
        )
        self.commit = Histogram(
            "veille_consumer_commit_seconds",
            "Offset commits, requested until Kafka answered",
            ["group"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )


class WorkerMetrics(DeadLetterMetrics, ConsumerMetrics):
    """A stream worker; ``role`` is validate or detect."""

    def __init__(self, registry: CollectorRegistry, role: str) -> None:
        DeadLetterMetrics.__init__(self, registry, "validate")
        ConsumerMetrics.__init__(self, registry)
        self.role = role
        self.consumed = Counter(
            "veille_worker_records_consumed", "Input records read", ["role"], registry=registry
        )
        self.produced = Counter(
            "veille_worker_records_produced",
            "Output records Kafka confirmed, by topic",
            ["role", "topic"],
            registry=registry,
        )
        self.group_records = Histogram(
            "veille_worker_group_records",
            "Input records handled together (one output record per partition for them all)",
            ["role"],
            buckets=BURST_BUCKETS,
            registry=registry,
        )
        self.produce = Histogram(
            "veille_worker_produce_seconds",
            "A group's outputs sent until Kafka confirmed them all",
            ["role"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.awaiting = Gauge(
            "veille_worker_groups_awaiting_confirmation",
            "Groups processed whose outputs Kafka has not confirmed (their offsets wait)",
            ["role"],
            registry=registry,
        )
        self.readings = Counter(
            "veille_validator_readings", "Valid readings sent on", registry=registry
        )
        self.alert_events = Counter(
            "veille_detector_alert_events",
            "Alert events the detector sent, by kind and priority",
            ["kind", "priority"],
            registry=registry,
        )
        self.patients = Gauge(
            "veille_detector_patients",
            "Patients whose detection state this detector holds",
            registry=registry,
        )


class SinkMetrics(DeadLetterMetrics, ConsumerMetrics):
    def __init__(self, registry: CollectorRegistry) -> None:
        DeadLetterMetrics.__init__(self, registry, "sink")
        ConsumerMetrics.__init__(self, registry)
        self.consumed = Counter(
            "veille_sink_records_consumed", "Kafka records read, by consumer group and topic",
            ["group", "topic"],
            registry=registry,
        )  # fmt: skip
        self.batch = Histogram(
            "veille_sink_batch_records",
            "Kafka records written in one transaction",
            buckets=BURST_BUCKETS,
            registry=registry,
        )
        self.rows = Counter(
            "veille_sink_rows_written", "Rows inserted, by table", ["table"], registry=registry
        )
        self.duplicates = Counter(
            "veille_sink_readings_duplicate",
            "Readings already stored (a replay after a crash or rebalance): not inserted again",
            registry=registry,
        )
        self.stored = Counter(
            "veille_sink_readings_stored",
            "Readings written, by establishment and care unit (a replay after a crash counts "
            "again: for the rate of arrival, not a census)",
            ["tenant", "care_unit"],
            registry=registry,
        )
        self.write = Histogram(
            "veille_sink_write_seconds",
            "One batch's database transaction",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.write_errors = Counter(
            "veille_sink_write_errors",
            "Database writes that failed: unavailable (retried) or refused (isolated)",
            ["kind"],
            registry=registry,
        )
        self.alerts_open = Gauge(
            "veille_alerts_open",
            "Open alerts, by establishment, care unit and priority (read from the database)",
            ["tenant", "care_unit", "priority"],
            registry=registry,
        )
        self.oldest_unacknowledged = Gauge(
            "veille_alerts_unacknowledged_oldest_seconds",
            "Age of the oldest open alert nobody acknowledged",
            ["tenant", "care_unit", "priority"],
            registry=registry,
        )


class ClinicMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "veille_clinic_requests",
            "HTTP requests, by method, route template (never the path) and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "veille_clinic_request_seconds",
            "HTTP request handling time",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Counter(
            "veille_webhook_deliveries",
            "Webhook delivery attempts, by outcome (delivered, failed, gave_up)",
            ["outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "veille_webhook_delivery_seconds",
            "One delivery attempt's HTTP exchange",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.pending = Gauge(
            "veille_webhook_deliveries_pending",
            "Deliveries claimed and in flight (at most VEILLE_WEBHOOK_CONCURRENCY)",
            registry=registry,
        )


def _sample_names(registry: CollectorRegistry) -> set[str]:
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "gauge": ("",),
    }
    names = set()
    for family in registry.collect():
        for suffix in suffixes.get(family.type, ("",)):
            if suffix != "_created" or family.name.startswith("veille_"):
                names.add(family.name + suffix)  # the process collector has no _created
    return names


def exported_metric_names() -> frozenset[str]:
    """Every sample name a Veille component can export (``_total``, ``_bucket``, ``_sum``,
    ``_count``, ``_created`` included): what the dashboard and the rules may use. One
    registry per component, as in production (shared families would collide in one)."""
    builders = (
        GatewayMetrics,
        lambda r: WorkerMetrics(r, "validate"),
        SinkMetrics,
        ClinicMetrics,
        WebhookMetrics,
    )
    names: set[str] = set()
    for build in builders:
        registry = ComponentRegistry("catalogue").registry
        build(registry)
        names |= _sample_names(registry)
    return frozenset(names)
