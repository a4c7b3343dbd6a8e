"""The telemetry package: endpoint, metric catalogue, logs, correlation ids in the records."""

from __future__ import annotations

import json
import logging
import socket
import urllib.request
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from devices import (
    CarriedMessage,
    ReadingBatch,
    encode_raw_records,
    encode_readings_records,
    envelopes_of,
    read_readings_record,
)
from streams._delivery import Output
from streams._telemetry import GroupTelemetry
from telemetry import (
    ClinicMetrics,
    ComponentRegistry,
    GatewayMetrics,
    JsonLogFormatter,
    SinkMetrics,
    WebhookMetrics,
    WorkerMetrics,
    correlated,
    exported_metric_names,
    serve_telemetry,
)

FORBIDDEN_LABELS = {"patient", "patient_pseudonym", "device", "device_id", "user", "clinician"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _get(url: str) -> tuple[int, str]:
    import asyncio

    def fetch() -> tuple[int, str]:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 - loopback test
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    return await asyncio.to_thread(fetch)


async def test_the_endpoint_serves_metrics_health_and_readiness_with_its_reasons() -> None:
    component = ComponentRegistry("gateway")
    metrics = GatewayMetrics(component.registry)
    metrics.received.inc(3)
    state = {"mqtt_connected": False}
    port = _free_port()
    async with serve_telemetry(component, lambda: state, host="127.0.0.1", port=port) as bound:
        assert bound == port
        status, body = await _get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        samples = {
            s.name: s.value
            for family in text_string_to_metric_families(body)
            for s in family.samples
        }
        assert samples["veille_gateway_messages_received_total"] == 3
        assert samples["veille_component_ready"] == 0
        assert samples["process_resident_memory_bytes"] > 0
        assert (await _get(f"http://127.0.0.1:{port}/healthz"))[0] == 200
        status, body = await _get(f"http://127.0.0.1:{port}/readyz")
        assert status == 503
        assert json.loads(body)["checks"] == {"mqtt_connected": False}
        state["mqtt_connected"] = True
        assert (await _get(f"http://127.0.0.1:{port}/readyz"))[0] == 200


async def test_a_taken_port_says_which_variable_to_change() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(OSError, match="VEILLE_METRICS_PORT"):
            async with serve_telemetry(
                ComponentRegistry("sink"), dict, host="127.0.0.1", port=port
            ):
                pass


async def test_port_zero_turns_the_endpoint_off() -> None:
    async with serve_telemetry(ComponentRegistry("sink"), dict, host="127.0.0.1", port=0) as p:
        assert p is None


def test_no_metric_has_a_label_naming_a_person_or_a_device() -> None:
    for build in (
        GatewayMetrics,
        lambda r: WorkerMetrics(r, "detect"),
        SinkMetrics,
        ClinicMetrics,
        WebhookMetrics,
    ):
        registry = CollectorRegistry()
        built = build(registry)
        for value in vars(built).values():
            labels = set(getattr(value, "_labelnames", ()))
            assert not labels & FORBIDDEN_LABELS, (value, labels)
    assert all(n.startswith(("veille_", "process_", "python_")) for n in exported_metric_names())


def test_the_catalogue_lists_every_sample_name_with_its_suffixes() -> None:
    names = exported_metric_names()
    assert {
        "veille_gateway_messages_received_total",
        "veille_gateway_produce_seconds_bucket",
        "veille_consumer_lag",
        "veille_sink_readings_stored_total",
        "veille_alerts_unacknowledged_oldest_seconds",
        "veille_clinic_requests_total",
        "veille_webhook_deliveries_total",
        "veille_build_info",
        "process_cpu_seconds_total",
    } <= names
    assert "process_cpu_seconds_created" not in names


def test_json_logs_carry_component_event_and_correlation_id() -> None:
    formatter = JsonLogFormatter("validator")
    record = logging.LogRecord("streams", logging.WARNING, __file__, 1, "%d dropped", (2,), None)
    with correlated("c0ffee"):
        line = json.loads(formatter.format(record))
    assert line["component"] == "validator"
    assert line["event"] == "2 dropped"
    assert line["level"] == "warning"
    assert line["cid"] == "c0ffee"
    outside = json.loads(formatter.format(record))
    assert "cid" not in outside


def _batch(patient: str) -> ReadingBatch:
    return ReadingBatch(
        tenant="t1", care_unit="icu", patient=patient, device_id="w-1",
        metrics=("heart_rate",), values=(72.0,), measured_at_us=(1,), seqs=(1,),
        received_at_us=(2,),
    )  # fmt: skip


def test_the_correlation_id_travels_in_raw_and_readings_records() -> None:
    message = CarriedMessage("veille/v1/t1/w-1/vitals", 5, b'{"v":1}')
    ((raw, count),) = encode_raw_records("gw-1", [message], correlation_id="abc123")
    assert count == 1
    (envelope,) = envelopes_of(raw)
    assert envelope.correlation_id == "abc123"
    ((untagged, _),) = encode_raw_records("gw-1", [message])
    assert envelopes_of(untagged)[0].correlation_id is None
    (record,) = encode_readings_records([_batch("p1")], correlation_ids=["abc123", "def"])
    read = read_readings_record(record)
    assert read.correlation_ids == ["abc123", "def"]
    assert [b.patient for b in read.batches] == ["p1"]
    (plain,) = encode_readings_records([_batch("p1")])
    assert read_readings_record(plain).correlation_ids == []


class _Topic:
    def __init__(self, name: str) -> None:
        self.name = name

    async def send(self, *, key: bytes, value: bytes, partition: int | None = None) -> Any:
        raise AssertionError("not sent in this test")

    def get_topic_name(self) -> str:
        return self.name


def test_a_group_is_counted_when_sent_and_its_outputs_when_confirmed() -> None:
    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry, "validate")
    telemetry = GroupTelemetry(metrics)
    readings, dlq = _Topic("veille.readings"), _Topic("veille.readings.dlq")
    outputs = [Output(readings, b"0", b"x"), Output(readings, b"1", b"y"), Output(dlq, b"d", b"z")]
    ran: list[bool] = []
    confirmed = telemetry.sent([object(), object()], outputs, lambda: ran.append(True))

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("veille_worker_records_consumed_total", role="validate") == 2
    assert value("veille_worker_records_produced_total", role="validate",
                 topic="veille.readings") is None  # fmt: skip
    confirmed()
    assert ran == [True]
    assert value("veille_worker_records_produced_total", role="validate",
                 topic="veille.readings") == 2  # fmt: skip
    assert value("veille_worker_produce_seconds_count", role="validate") == 1


def test_a_request_is_labelled_with_its_full_route_template_never_its_path() -> None:
    from clinic._telemetry import route_template

    class Route:
        path = "/patients/{pseudonym}/thresholds/{rule_id}"

    scope = {
        "route": Route(),
        "path": "/api/v1/patients/p-9f/thresholds/spo2_low",
        "path_params": {"pseudonym": "p-9f", "rule_id": "spo2_low"},
    }
    assert route_template(scope) == "/api/v1/patients/{pseudonym}/thresholds/{rule_id}"
    assert route_template({"path": "/wp-login.php"}) == "unmatched"
