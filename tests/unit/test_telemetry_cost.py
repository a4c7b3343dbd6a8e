"""The instrumentation's cost in the benchmark: what is timed does what the hot path does, and
the report and its JSON render from a fixed result (figures come from `make bench`, never
from a timed assertion here)."""

from __future__ import annotations

import asyncio
import dataclasses
import socket

import pytest
from prometheus_client import CollectorRegistry, generate_latest

import bench._telemetry_cost as telemetry_cost
from bench._batch_sizes import (
    COMPONENTS,
    BatchSizes,
    Samples,
    StageSize,
    parse_samples,
    scrape_all,
    sizes_between,
)
from bench._capacity import Capacity, Ceilings
from bench._capacity_report import CapacityRun, capacity_json, capacity_section
from bench._kafka_ceiling import KafkaCeiling
from bench._mqtt_ceiling import MqttCeiling
from bench._telemetry_cost import (
    FULL,
    ONE_MESSAGE,
    StageCosts,
    TelemetryCost,
    detector_group,
    measure_telemetry_cost,
    per_message_realistic_us,
    sink_batch,
    validator_group,
)
from devices import DeadLetterReason
from store import ReadingBatches, WriteResult
from streams._delivery import Output
from streams._sink import SinkRows
from streams._sink import _count_written as sink_count_written
from streams._telemetry import GroupTelemetry
from telemetry import ComponentRegistry, GatewayMetrics, SinkMetrics, WorkerMetrics

from .test_capacity_report import single_run, step

COST = TelemetryCost(
    readings_per_message=1,
    full=StageCosts(burst_us=8.0, validator_group_us=17.5, detector_group_us=12.5, sink_batch_us=40.0),
    one_message=StageCosts(burst_us=8.0, validator_group_us=10.0, detector_group_us=7.0,
                           sink_batch_us=11.0),
    raw_cid_written_us=0.05, raw_cid_read_us=0.15, readings_cids_written_us=0.3,
    readings_cids_read_us=0.25, unit_count_us=0.3, sensor_hooks_us=0.5,
)  # fmt: skip


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample but creation times, and of a latency only how many were observed (the
    seconds differ from one call to the next)."""
    out = {}
    for family in registry.collect():
        for s in family.samples:
            timed = family.name.endswith("_seconds") and not s.name.endswith("_count")
            if not s.name.endswith("_created") and not timed:
                out[s.name, tuple(sorted(s.labels.items()))] = s.value
    return out


class _Topic:
    def __init__(self, name: str) -> None:
        self.name = name

    def get_topic_name(self) -> str:
        return self.name


def test_the_group_calls_timed_are_group_telemetrys() -> None:
    real, timed = CollectorRegistry(), CollectorRegistry()
    readings, dlq, alerts = _Topic("veille.readings"), _Topic("veille.dlq"), _Topic("veille.alerts")
    outputs = [Output(readings, b"0", b"x"), Output(readings, b"1", b"y"), Output(dlq, b"d", b"z"),
               Output(alerts, b"p", b"a")]  # fmt: skip
    events = [object(), object(), object()]
    alert_events = [telemetry_cost._alert(i) for i in range(3)]
    for registry, kind in ((real, GroupTelemetry), (timed, telemetry_cost._GroupTelemetry)):
        group = kind(WorkerMetrics(registry, "detect"))
        group.validated(7, ["undecodable", "unknown_device", "undecodable"])
        group.sent(events, outputs, None, alert_events)()
    assert _samples(timed) == _samples(real)
    assert real.get_sample_value("veille_detector_alert_events_total",
                                 {"kind": "opened", "priority": "high"}) == 1  # fmt: skip


def test_the_sink_calls_timed_are_count_writtens() -> None:
    rows = SinkRows(ReadingBatches(), [], [])
    rows.per_unit["t", "icu"] = 30
    rows.per_unit["t", "cardio"] = 4
    d = telemetry_cost._dead_letter("sink")
    rows.dead_letters.append((d.dead_letter_id, "sink", DeadLetterReason.UNDECODABLE.value,
                              "", "", None, telemetry_cost.us_to_datetime(0), ""))  # fmt: skip
    result = WriteResult(readings_inserted=30, readings_duplicate=4, dead_letters_inserted=1)
    real, timed = CollectorRegistry(), CollectorRegistry()
    sink_count_written(SinkMetrics(real), rows, result, 0.004)
    telemetry_cost._count_written(SinkMetrics(timed), rows, result, 0.004)
    assert _samples(timed) == _samples(real)
    assert real.get_sample_value("veille_sink_readings_stored_total",
                                 {"tenant": "t", "care_unit": "icu"}) == 30  # fmt: skip


def test_each_timed_call_does_the_work_of_its_stage_at_full_width() -> None:
    registry = CollectorRegistry()
    worker = WorkerMetrics(registry, "validate")
    validator_group(worker, 30, FULL)()
    value = registry.get_sample_value
    assert value("veille_validator_readings_total") == FULL.partitions * 30
    assert value("veille_worker_records_produced_total",
                 {"role": "validate", "topic": "veille.readings"}) == FULL.partitions  # fmt: skip
    assert value("veille_dead_letters_total",
                 {"stage": "validate", "reason": "undecodable"}) == FULL.dead_letters  # fmt: skip

    registry = CollectorRegistry()
    detector_group(WorkerMetrics(registry, "detect"), ONE_MESSAGE)()
    assert (
        value("veille_detector_alert_events_total", {"kind": "opened", "priority": "high"}) is None
    )  # another registry
    assert registry.get_sample_value("veille_detector_alert_events_total",
                                     {"kind": "opened", "priority": "high"}) == 1  # fmt: skip

    registry = CollectorRegistry()
    sink_batch(SinkMetrics(registry), 30, FULL)()
    stored = [s for f in registry.collect() for s in f.samples
              if s.name == "veille_sink_readings_stored_total"]  # fmt: skip
    assert len(stored) == FULL.care_units
    assert sum(s.value for s in stored) == FULL.partitions * 30
    assert registry.get_sample_value("veille_sink_records_consumed_total",
                                     {"group": "veille-sink", "topic": "veille.readings"}) == FULL.partitions  # fmt: skip


def test_the_measurement_returns_positive_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telemetry_cost, "REPEATS", 3)
    monkeypatch.setattr(telemetry_cost, "NUMBER", 50)
    cost = measure_telemetry_cost(30)
    for stages in (cost.full, cost.one_message):
        assert all(us > 0 for us in dataclasses.astuple(stages))
    extras = (cost.raw_cid_written_us, cost.raw_cid_read_us, cost.readings_cids_written_us,
              cost.readings_cids_read_us, cost.unit_count_us, cost.sensor_hooks_us)  # fmt: skip
    assert all(us >= 0 for us in extras)  # a difference within the noise reads as nothing
    assert cost.per_message_worst_us >= cost.one_message.total_us > 0
    assert cost.per_reading_worst_us == cost.per_message_worst_us / 30


def _run_with(cost: TelemetryCost) -> CapacityRun:
    mqtt = MqttCeiling(1000.0, 8000, 8000, 8000, 1000.0, 5.0, 30.0, 40.0)
    kafka = KafkaCeiling(40_000, 250, 9_000.0, 20_000.0, 60.0, 10.0)
    ceilings = Ceilings(mqtt, kafka, 100_000.0, None, cost)
    return CapacityRun(single_run().capacity, ceilings)  # 345 us per message


def test_the_worst_case_is_a_message_alone_in_its_bursts_groups_batch_and_records() -> None:
    assert COST.per_record_us == pytest.approx(0.05 + 0.15 + 0.3 + 2 * 0.25 + 0.3 + 2 * 0.5)
    assert COST.per_message_worst_us == pytest.approx(36.0 + 2.3)
    assert COST.per_message_bound_us == pytest.approx(78.0 + 2.3)
    assert COST.share_of(345.0) == pytest.approx(38.3 / 345)
    assert COST.added_to(345.0) == pytest.approx(38.3 / (345 - 38.3))


def test_the_cost_of_instrumentation_has_its_lines_and_a_verdict() -> None:
    text = "\n".join(capacity_section([_run_with(COST)], 12.5))
    assert "Cost of instrumentation (issue 15's metrics" in text
    assert (
        "- **Instrumentation, single**: a gateway burst 8.0 µs (full width 8.0), a validator "
        "group 10.0 (17.5), a detector group 7.0 (12.5), a sink batch 11.0 (40.0); per record "
        "2.3 (correlation ids in the raw record 0.05 written, 0.15 read, in the readings record "
        "0.30 written, 0.25 read twice; the care unit's count 0.30; the Faust sensor's hooks "
        "0.50 in each worker). Worst case, the message alone in its burst, groups, batch and "
        "records: **38.3 µs per message**, 38.30 per reading, 11.1% of the pipeline's CPU per "
        "message (345 µs): it adds 12.5% to its CPU per reading." in text
    )
    assert (
        "- Issue 15's budget (single: the instrumentation moves the CPU per reading by at most "
        "5 %; printed, not asserted): **missed** (12.49 %, 2.5x short of 5) in the worst case; "
        "met once bursts, groups and batches hold 6 messages or more on average." in text
    )
    cheap = dataclasses.replace(COST, one_message=StageCosts(2.0, 2.0, 2.0, 2.0))
    text = "\n".join(capacity_section([_run_with(cheap)], 12.5))
    assert "printed, not asserted): **met** (3.08 %) in the worst case." in text


def test_without_a_measurement_there_are_no_lines() -> None:
    text = "\n".join(capacity_section([single_run()], 12.5))
    assert "Cost of instrumentation" not in text


def test_the_json_adds_the_instrumentation_per_shape_and_keeps_issue_14s_fields() -> None:
    unsustained = Capacity("upload30", search=[step("upload30", 30, 300, 20, sustained=False)])
    figures = capacity_json([_run_with(COST), CapacityRun(unsustained, None)], 12.5)
    assert figures["instrumentation_us_per_msg_worst"] == {"single": 38.3, "upload30": None}
    assert figures["instrumentation_share_of_pipeline_cpu"] == {"single": 0.111, "upload30": None}
    assert figures["single"] == {
        "sustained_msg_per_s": 1000,
        "pipeline_cpu_us_per_msg": 345.0,
        "efficiency": 1.0,  # held 1,000 msg/s, the MQTT ceiling's rate
    }
    assert list(figures)[-1] == "soak_rss_growth_pct"


# 400 messages in 10 bursts of 100 raw records; the validator's 20 groups take the 100 raw
# records, the detector's 25 groups 50 readings records, the sink's 5 batches 60 records.
SIZES = BatchSizes(
    gateway=StageSize(groups=10, records=100, messages=400),
    validator=StageSize(groups=20, records=100, messages=400),
    detector=StageSize(groups=25, records=50, messages=400),
    sink=StageSize(groups=5, records=60, messages=400),
)
REALISTIC = (
    8.0 / 40  # a burst: 10 raw records, 40 messages
    + (10.0 + 7.5 * 4 / 11) / 20  # a validator group: 5 raw records, 20 messages
    + (7.0 + 5.5 * 1 / 11) / 16  # a detector group: 2 readings records of 8 messages
    + 40.0 / 80  # a sink batch: 12 records, FULL's width, 80 messages
    + (0.05 + 0.15 + 0.5) / 4  # per raw record: its correlation id, the validator's hooks
    + (0.3 + 2 * 0.25 + 0.5) / 8  # per readings record: its ids, the detector's hooks
    + 0.3  # the sink's count per care unit, per message
)


def _scrapes(messages: int, bursts: int, raw: int, groups: tuple[int, int, int, int],
             records: tuple[int, int, int]) -> dict[str, Samples | None]:  # fmt: skip
    """Each component's exposition, from the real metric classes."""
    registries = [ComponentRegistry(name).registry for name in COMPONENTS]
    gateway = GatewayMetrics(registries[0])
    validator = WorkerMetrics(registries[1], "validate")
    detector = WorkerMetrics(registries[2], "detect")
    sink = SinkMetrics(registries[3])
    for i in range(bursts):
        gateway.burst.observe(messages // bursts + (i < messages % bursts))
    gateway.records_sent.inc(raw)
    for metric, n, total in (
        (validator.group_records.labels("validate"), groups[1], records[0]),
        (detector.group_records.labels("detect"), groups[2], records[1]),
        (sink.batch, groups[3], records[2]),
    ):
        for i in range(n):
            metric.observe(total // n + (i < total % n))
    return {
        name: parse_samples(generate_latest(registry).decode())
        for name, registry in zip(COMPONENTS, registries, strict=True)
    }


def test_the_mean_sizes_are_the_differences_of_the_components_histograms() -> None:
    before = _scrapes(7, 1, 2, (1, 1, 1, 1), (2, 1, 1))
    after = _scrapes(407, 11, 102, (11, 21, 26, 6), (102, 51, 61))
    assert sizes_between(before, after) == SIZES
    assert SIZES.messages_per_burst == 40
    assert SIZES.detector.messages_per_record == 8
    assert SIZES.sink.messages_per_group == pytest.approx(80)


def test_a_component_not_scraped_or_a_stage_that_saw_nothing_leaves_them_unmeasured() -> None:
    before = _scrapes(7, 1, 2, (1, 1, 1, 1), (2, 1, 1))
    after = _scrapes(407, 11, 102, (11, 21, 26, 6), (102, 51, 61))
    assert sizes_between(before, {**after, "detector": None}) is None
    assert sizes_between(before, before) is None


def test_an_endpoint_that_does_not_answer_reads_as_not_scraped() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed on leaving: nothing listens there
    scraped = asyncio.run(scrape_all({"gateway": f"http://127.0.0.1:{port}/metrics"}))
    assert scraped == dict.fromkeys(COMPONENTS)


def test_the_realistic_cost_shares_each_stage_out_by_its_measured_size() -> None:
    assert per_message_realistic_us(COST, SIZES) == pytest.approx(REALISTIC)
    alone = StageSize(groups=1, records=1, messages=1)
    assert per_message_realistic_us(COST, BatchSizes(alone, alone, alone, alone)) == (
        pytest.approx(COST.per_message_worst_us)
    )


def _run_with_sizes(sizes: BatchSizes | None) -> CapacityRun:
    run = _run_with(COST)
    return dataclasses.replace(run, capacity=dataclasses.replace(run.capacity, batch_sizes=sizes))


def test_the_section_gives_the_measured_sizes_the_realistic_share_and_its_verdict() -> None:
    text = "\n".join(capacity_section([_run_with_sizes(SIZES)], 12.5))
    assert "**38.3 µs per message**" in text  # the worst case stays
    assert (
        "- Mean sizes at the sustained rate (single, the 60 s hold, from the components' "
        "metrics): a gateway burst 40.0 messages in 10.0 raw records (4.0 messages each); a "
        "validator group 5.0 raw records (20.0 messages); a detector group 2.0 readings "
        "records of 8.0 messages (16.0 messages); a sink batch 12.0 records (80.0 messages). "
        "Shared out by them: **2.4 µs per message** realistic, 2.44 per reading, 0.7% of the "
        "pipeline's CPU per message." in text
    )
    assert (
        "- Issue 15's budget on the realistic figure (single; printed, not asserted): **met** "
        "(0.71 %) added to the CPU per reading." in text
    )
    figures = capacity_json([_run_with_sizes(SIZES)], 12.5)
    assert figures["instrumentation_share_realistic"] == {"single": round(REALISTIC / 345, 4)}
    assert figures["instrumentation_share_of_pipeline_cpu"] == {"single": 0.111}


def test_sizes_not_measured_are_said_so_and_left_out_of_the_json() -> None:
    text = "\n".join(capacity_section([_run_with_sizes(None)], 12.5))
    assert (
        "- Mean sizes at the sustained rate (single): not measured (no hold sustained, or a "
        "component's metrics could not be scraped); realistic share: not measured." in text
    )
    assert "**38.3 µs per message**" in text
    figures = capacity_json([_run_with_sizes(None)], 12.5)
    assert figures["instrumentation_share_realistic"] == {"single": None}
