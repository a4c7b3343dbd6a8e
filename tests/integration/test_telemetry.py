"""Every pipeline component answers /metrics, /healthz and /readyz on its own port, and its
counters move as readings flow (real processes, real sockets, the local stack)."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from devices import device_topic
from telemetry import exported_metric_names
from tests.integration.conftest import RunningPipeline
from tests.support.devices import TENANT, new_device, provision, reading, single_payload
from tests.support.pipeline import publish_all
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

COMPONENTS = ("gateway", "validator", "detector", "sink")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _answers(url: str) -> int | None:
    """The status, or None while nothing listens yet."""
    try:
        return _get(url)[0]
    except urllib.error.URLError:
        return None


async def _samples(pipeline: RunningPipeline, name: str) -> tuple[Samples, set[str]]:
    status, body = await asyncio.to_thread(_get, pipeline.component(name).metrics_url())
    assert status == 200
    samples: Samples = {}
    families: set[str] = set()
    for family in text_string_to_metric_families(body):
        families.add(family.name)
        for s in family.samples:
            samples[s.name, frozenset(s.labels.items())] = s.value
    return samples, families


def _total(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


async def test_each_component_is_alive_ready_and_exports_only_catalogued_metrics(
    pipeline: RunningPipeline,
) -> None:
    catalogue = exported_metric_names()
    for name in COMPONENTS:
        component = pipeline.component(name)
        # The fixture waits for the gateway's subscription only: the others may still start.
        await eventually(
            lambda c=component: asyncio.to_thread(_answers, c.metrics_url("/healthz")),
            lambda status: status == 200,
            what=f"{name} alive",
        )
        await eventually(
            lambda c=component: asyncio.to_thread(_get, c.metrics_url("/readyz")),
            lambda answer: answer[0] == 200,
            what=f"{name} ready",
        )
        samples, _ = await _samples(pipeline, name)
        assert _total(samples, "veille_build_info", component=name) == 1
        assert _total(samples, "veille_component_ready", component=name) == 1
        assert _total(samples, "process_resident_memory_bytes") > 0
        unknown = {n for n, _ in samples} - catalogue
        assert not unknown, f"{name} exports names the catalogue lacks: {unknown}"


async def test_counters_move_as_readings_flow_from_gateway_to_sink(
    pipeline: RunningPipeline,
) -> None:
    before = {name: (await _samples(pipeline, name))[0] for name in COMPONENTS}
    device = new_device("tm")
    await provision(pipeline.stack.dsn, device)
    start = datetime.now(UTC) - timedelta(minutes=2)
    messages = [
        (device.topic, single_payload(device, reading(i, "heart_rate", 70, "/min",
                                                      start + timedelta(seconds=i))), 1)
        for i in range(20)
    ]  # fmt: skip
    stranger = device_topic(TENANT, "tm-never-provisioned")
    messages.append((stranger, b'{"v": 1, "device_id": "tm-never-provisioned"}', 1))
    assert publish_all(pipeline.stack.publisher, messages) == 21

    def moved(name: str, metric: str, by: float, **labels: str) -> object:
        async def probe() -> float:
            now = (await _samples(pipeline, name))[0]
            return _total(now, metric, **labels) - _total(before[name], metric, **labels)

        return eventually(probe, lambda delta: delta >= by, what=f"{name} {metric} +{by}")

    await moved("gateway", "veille_gateway_messages_received_total", 21)
    await moved("gateway", "veille_gateway_messages_acknowledged_total", 21)
    await moved("gateway", "veille_gateway_produce_seconds_count", 1)
    await moved("validator", "veille_validator_readings_total", 20)
    await moved("validator", "veille_dead_letters_total", 1, stage="validate")
    await moved("validator", "veille_worker_records_produced_total", 1, topic="veille.readings")
    await moved("detector", "veille_worker_records_consumed_total", 1, role="detect")
    await moved("sink", "veille_sink_readings_stored_total", 20, care_unit=device.care_unit)
    await moved("sink", "veille_sink_rows_written_total", 20, table="readings")
    await moved("sink", "veille_sink_write_seconds_count", 1)
    await moved("sink", "veille_consumer_commit_seconds_count", 1, group="veille-sink")

    # Lag per partition, from the probe that runs every 15 s: one series per partition.
    async def lag_groups() -> set[str]:
        samples, _ = await _samples(pipeline, "validator")
        return {dict(ls)["group"] for n, ls in samples if n == "veille_consumer_lag"}

    await eventually(lag_groups, lambda groups: groups == {"veille-validate"}, what="lag")
