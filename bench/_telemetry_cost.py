"""What the instrumentation of issue 15 costs on the hot path, timed call by call.

The end-to-end figures of this machine drift up to 2x between runs, so an A/B of two runs
(metrics on, metrics off) cannot resolve the issue's budget (5 % of the CPU per reading).
Instead, the calls the hot path makes are timed here, in this process on an otherwise idle
loop (``timeit`` with CPU time, median of :data:`REPEATS`), with the real metric classes on a
real :class:`ComponentRegistry`, and the report sets them against the same run's pipeline CPU
per message:

- per gateway burst: ``run_gateway``'s metric updates, a correlation id drawn, ``correlated``
  entered and left (ingest/_gateway.py);
- per validator and per detector group: ``GroupTelemetry.sent``, its ``confirmed`` callback,
  ``validated``, the group's correlation ids gathered (streams/_telemetry.py, streams/_app.py);
- per sink batch: records per partition, batch size, rows written per table and care unit,
  the commit's latency (streams/_sink.py);
- per record: the correlation ids the raw and readings records carry, written and read (with
  minus without, timed in pairs), per reading batch the sink's count per care unit, and in
  each worker the hooks Faust calls on the commit timer, one more sensor of the app.

A burst, a group and a batch are timed twice: holding one message (:data:`ONE_MESSAGE`), whose
sum with the per-record costs is the worst case per message, and at the width of a busy moment
(:data:`FULL`), which the report shares out to find how full they must be for the budget.

The realistic figure (:func:`per_message_realistic_us`) shares those costs out by the mean
sizes the same run measured at the rate it sustained (``bench/_batch_sizes.py``: the
components' own histograms, scraped around the 60 s hold). With ``n`` a stage's mean records
per burst, group or batch, ``m`` its messages per record (messages the gateway received over
the records the stage took in) and ``c(n)`` the stage's cost at ``n`` records::

    realistic = c_burst(n_gw) / (n_gw * m_gw)          # raw records per burst
              + c_validator(n_v) / (n_v * m_v)         # raw records per group
              + c_detector(n_d) / (n_d * m_d)          # readings records per group
              + c_sink(n_s) / (n_s * m_s)              # readings, alert, dead-letter records
              + (raw cid written + raw cid read + validator's sensor hooks) / m_v
              + (readings cids written + 2 x read + detector's sensor hooks) / m_d
              + the sink's count per care unit          # per reading batch, taken per message

Approximations: ``c(n)`` is linear between the two timed widths, one record
(:data:`ONE_MESSAGE`) and ``FULL.partitions`` records (:data:`FULL`), and held at FULL beyond
(a group writes one output per partition, though its gathering of correlation ids still grows
with its records); the alert events, care units and dead letters inside a group or batch are
those of the two widths, not counted; the readings records carry the correlation ids of one
burst as timed, where a group's record may carry several; a reading batch is one device's
readings of a raw record, nearly always one message with 1,000 devices round-robin, so its
count is charged to every message. The means are of the whole hold, its first and last
seconds included, when bursts and groups are smaller.

``GroupTelemetry`` and the sink's ``_count_written`` are private to ``streams``, which ``bench``
may not import (tests/unit/test_architecture.py): the same public metric calls are made here
in the same order, and tests/unit/test_telemetry_cost.py checks that they move the same
samples as the real ones.
"""

from __future__ import annotations

import logging
import time
import timeit
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import faust
import orjson
from aiokafka import TopicPartition

from devices import (
    AlertEvent,
    AlertEventKind,
    CarriedMessage,
    DeadLetter,
    DeadLetterReason,
    Priority,
    ReadingBatch,
    device_topic,
    encode_raw_records,
    encode_readings_records,
    envelopes_of,
    read_readings_record,
    us_to_datetime,
)
from ingest import PackedRecord
from store import ReadingBatches, WriteResult
from streams.runtime import SINK_GROUP_ID, SinkCounters, SinkRows
from telemetry import (
    ComponentRegistry,
    GatewayMetrics,
    SinkMetrics,
    WorkerMetrics,
    correlated,
    new_correlation_id,
)

from ._batch_sizes import BatchSizes, StageSize
from ._stats import median

__all__ = [
    "FULL",
    "NUMBER",
    "ONE_MESSAGE",
    "REPEATS",
    "StageCosts",
    "TelemetryCost",
    "Width",
    "detector_group",
    "gateway_burst",
    "measure_telemetry_cost",
    "per_message_realistic_us",
    "sink_batch",
    "validator_group",
]

log = logging.getLogger(__name__)

REPEATS = 7
NUMBER = 2_000  # calls per timing: 10 to 100 ms each on this machine
TENANT = "chu-bench"
T0 = 1_790_000_000_000_000


@dataclass(frozen=True, slots=True)
class Width:
    """How much a gateway burst, a worker group and a sink batch hold."""

    partitions: int  # raw records of a burst, readings outputs of a group, partitions of a batch
    care_units: int  # the sink's readings per care unit, one label pair each
    alert_events: int  # sent by a detector group
    dead_letters: int  # refused by a validator group
    burst_ids: int  # correlation ids in a group (records of that many gateway bursts)


# A busy moment on the bench's topics (12 partitions, bench/_cli.py): every partition in each
# burst, group and batch, ten care units, a few alerts and a dead letter.
FULL = Width(partitions=12, care_units=10, alert_events=3, dead_letters=1, burst_ids=2)
# A message alone in its burst, groups and batch: one record each, one unit; it opens an alert.
ONE_MESSAGE = Width(partitions=1, care_units=1, alert_events=1, dead_letters=0, burst_ids=1)


@dataclass(frozen=True, slots=True)
class StageCosts:
    """CPU microseconds of one gateway burst, one validator group, one detector group and
    one sink batch, median of REPEATS."""

    burst_us: float
    validator_group_us: float
    detector_group_us: float
    sink_batch_us: float

    @property
    def total_us(self) -> float:
        return self.burst_us + self.validator_group_us + self.detector_group_us + self.sink_batch_us


@dataclass(frozen=True, slots=True)
class TelemetryCost:
    """CPU microseconds of the instrumentation for messages of ``readings_per_message``
    readings, median of REPEATS."""

    readings_per_message: int
    full: StageCosts  # at FULL width
    one_message: StageCosts  # at ONE_MESSAGE width
    raw_cid_written_us: float  # a raw record with its burst's correlation id, minus without
    raw_cid_read_us: float
    readings_cids_written_us: float  # a readings record with its group's correlation ids
    readings_cids_read_us: float  # read twice: by the detector and by the sink
    unit_count_us: float  # the sink's readings per care unit, one reading batch
    sensor_hooks_us: float  # one more Faust sensor: a record in and out, a table read and write

    @property
    def per_record_us(self) -> float:
        """What a message pays when its records hold it alone."""
        return (
            self.raw_cid_written_us
            + self.raw_cid_read_us
            + self.readings_cids_written_us
            + 2 * self.readings_cids_read_us
            + self.unit_count_us
            + 2 * self.sensor_hooks_us  # the validator's and the detector's
        )

    @property
    def per_message_worst_us(self) -> float:
        """A message alone in its gateway burst, its two worker groups and its sink batch,
        and in each of its records: every one of their costs lands on it."""
        return self.one_message.total_us + self.per_record_us

    @property
    def per_message_bound_us(self) -> float:
        """The FULL width costs charged to one message: more than any message can pay."""
        return self.full.total_us + self.per_record_us

    @property
    def per_reading_worst_us(self) -> float:
        return self.per_message_worst_us / self.readings_per_message

    def share_of(self, pipeline_cpu_us_per_message: float) -> float:
        """The worst case as a share of a pipeline's CPU per message measured with it."""
        return self.per_message_worst_us / pipeline_cpu_us_per_message

    def added_to(self, pipeline_cpu_us_per_message: float) -> float:
        """What the worst case adds to the pipeline's CPU per message (and per reading): the
        pipeline is measured with its metrics on, so without them it costs the difference."""
        worst = self.per_message_worst_us
        return worst / (pipeline_cpu_us_per_message - worst)


def _at_width(one: float, full: float, records: float) -> float:
    """A stage's cost for ``records`` records: linear between the two timed widths."""
    span = FULL.partitions - ONE_MESSAGE.partitions
    x = min(max(records - ONE_MESSAGE.partitions, 0.0) / span, 1.0)
    return one + (full - one) * x


def _shared(one: float, full: float, stage: StageSize) -> float:
    return _at_width(one, full, stage.records_per_group) / stage.messages_per_group


def per_message_realistic_us(cost: TelemetryCost, sizes: BatchSizes) -> float:
    """The instrumentation's CPU per message with bursts, groups, batches and records as full
    as the run measured them (the module's doc gives the formula and its approximations)."""
    one, full = cost.one_message, cost.full
    stages = (
        _shared(one.burst_us, full.burst_us, sizes.gateway)
        + _shared(one.validator_group_us, full.validator_group_us, sizes.validator)
        + _shared(one.detector_group_us, full.detector_group_us, sizes.detector)
        + _shared(one.sink_batch_us, full.sink_batch_us, sizes.sink)
    )
    raw = cost.raw_cid_written_us + cost.raw_cid_read_us + cost.sensor_hooks_us
    readings = cost.readings_cids_written_us + 2 * cost.readings_cids_read_us
    readings += cost.sensor_hooks_us
    return (
        stages
        + raw / sizes.validator.messages_per_record
        + readings / sizes.detector.messages_per_record
        + cost.unit_count_us
    )


class _Topic(Protocol):
    def get_topic_name(self) -> str: ...


class _SentRecord(Protocol):
    """What ``confirmed`` reads of an output (streams' ``Output``, private to streams)."""

    @property
    def topic(self) -> _Topic: ...


class _NamedTopic:
    def __init__(self, name: str) -> None:
        self.name = name

    def get_topic_name(self) -> str:
        return self.name


class _Output(NamedTuple):
    topic: _Topic
    key: bytes
    value: bytes
    partition: int | None = None


class _GroupTelemetry:
    """``streams/_telemetry.py``'s GroupTelemetry, call for call (see the module's doc)."""

    def __init__(self, metrics: WorkerMetrics) -> None:
        role = metrics.role
        self._metrics = metrics
        self._consumed = metrics.consumed.labels(role)
        self._group = metrics.group_records.labels(role)
        self._produce = metrics.produce.labels(role)
        self._awaiting = metrics.awaiting.labels(role)  # read when scraped (``watch``)
        self._role = role

    def validated(self, readings: int, dead_letter_reasons: Sequence[str]) -> None:
        self._metrics.readings.inc(readings)
        self._metrics.count(dead_letter_reasons)

    def sent(
        self,
        events: Sequence[Any],
        outputs: Sequence[_SentRecord],
        then: Callable[[], None] | None = None,
        alerts: Sequence[AlertEvent] = (),
    ) -> Callable[[], None]:
        self._consumed.inc(len(events))
        self._group.observe(len(events))
        started = time.monotonic()

        def confirmed() -> None:
            self._produce.observe(time.monotonic() - started)
            per_topic = Counter(o.topic.get_topic_name() for o in outputs)
            for topic, count in per_topic.items():
                self._metrics.produced.labels(self._role, topic).inc(count)
            for alert in alerts:
                self._metrics.alert_events.labels(alert.kind.value, alert.priority.value).inc()
            if then is not None:
                then()

        return confirmed


def _count_written(
    metrics: SinkMetrics, rows: SinkRows, result: WriteResult, seconds: float
) -> None:
    """``streams/_sink.py``'s ``_count_written``, call for call (see the module's doc)."""
    metrics.write.observe(seconds)
    metrics.rows.labels("readings").inc(result.readings_inserted)
    metrics.rows.labels("alert_events").inc(result.alert_events_inserted)
    metrics.rows.labels("dead_letters").inc(result.dead_letters_inserted)
    metrics.duplicates.inc(result.readings_duplicate)
    for (tenant, care_unit), count in rows.per_unit.items():
        metrics.stored.labels(tenant, care_unit).inc(count)
    metrics.count(row[2] for row in rows.dead_letters if row[1] == "sink")


def _batch(k: int, index: int = 0) -> ReadingBatch:
    return ReadingBatch(
        TENANT, "unit-0", f"patient-{index:05d}", f"dev-{index:05d}",
        ("heart_rate",) * k, (72.0,) * k, tuple(T0 + j for j in range(k)),
        tuple(range(1, k + 1)), (T0 + k,) * k, "bedside-monitor",
    )  # fmt: skip


def _message(k: int, index: int = 0) -> CarriedMessage:
    """One device message of ``k`` readings, its payload as the gateway carries it."""
    device = f"dev-{index:05d}"
    readings = [
        {"metric": "heart_rate", "value": 72.0, "unit": "/min", "seq": j + 1,
         "measured_at": f"2026-09-21T10:00:00.{j:06d}Z"}
        for j in range(k)
    ]  # fmt: skip
    body = (
        {"v": 1, "device_id": device, **readings[0]}
        if k == 1
        else {"v": 1, "device_id": device, "readings": readings}
    )
    return CarriedMessage(device_topic(TENANT, device), T0, orjson.dumps(body))


def _dead_letter(stage: str) -> DeadLetter:
    return DeadLetter.build(
        stage=stage, reason=DeadLetterReason.UNDECODABLE, detail="not JSON",
        mqtt_topic=device_topic(TENANT, "dev-x"), device_id="dev-x", received_at_us=T0, raw=b"{",
    )  # fmt: skip


def _alert(index: int) -> AlertEvent:
    kinds = (AlertEventKind.OPENED, AlertEventKind.RESOLVED, AlertEventKind.ESCALATED)
    priorities = (Priority.HIGH, Priority.MEDIUM, Priority.LOW)
    return AlertEvent(
        f"alert-{index}", kinds[index % 3], TENANT, "unit-0", f"patient-{index:05d}", "spo2_low",
        "spo2", priorities[index % 3], T0, 85.0, "spo2 85 is below 90",
    )  # fmt: skip


def gateway_burst(metrics: GatewayMetrics, width: Width) -> Callable[[], None]:
    """``run_gateway``'s instrumentation for one burst (ingest/_gateway.py): one record per
    partition, one message in each, nothing redelivered or dead-lettered."""
    burst = [_message(1, p) for p in range(width.partitions)]
    records = [PackedRecord(p, b"", 1) for p in range(width.partitions)]
    dead_letters: list[DeadLetter] = []

    def one_burst() -> None:
        metrics.received.inc(len(burst))
        metrics.redelivered.inc(0)
        metrics.burst.observe(len(burst))
        metrics.awaiting.set(len(burst))
        started = time.monotonic()
        correlation_id = new_correlation_id()
        with correlated(correlation_id):  # around the partitioner and the sends
            if log.isEnabledFor(logging.DEBUG):
                log.debug("forwarded %d messages in %d records", len(burst), len(records))
        metrics.produce.observe(time.monotonic() - started)
        metrics.awaiting.set(0)
        metrics.records_sent.inc(len(records))
        metrics.forwarded.inc(sum(r.messages for r in records))
        metrics.acknowledged.inc(len(burst))
        metrics.count(d.reason.value for d in dead_letters)

    return one_burst


def validator_group(metrics: WorkerMetrics, k: int, width: Width) -> Callable[[], None]:
    """The validator's instrumentation for one group (streams/_app.py ``outputs_of``,
    ``validated``, ``handle``): one envelope and one readings output per partition, from
    ``burst_ids`` bursts, and the dead letters' outputs."""
    telemetry = _GroupTelemetry(metrics)
    ids = [new_correlation_id() for _ in range(width.burst_ids)]
    envelopes = [
        envelopes_of(raw)[0]
        for p in range(width.partitions)
        for raw, _ in encode_raw_records("gw", [_message(k, p)], correlation_id=ids[p % len(ids)])
    ]
    refused = [
        [_dead_letter("validate")] if p < width.dead_letters else []
        for p in range(width.partitions)
    ]
    batches = [_batch(k, p) for p in range(width.partitions)]
    readings, dead = _NamedTopic("veille.readings"), _NamedTopic("veille.dead-letters")
    outputs = [_Output(readings, str(p).encode(), b"", p) for p in range(width.partitions)]
    outputs += [_Output(dead, b"dev-x", b"") for _ in range(width.dead_letters)]
    events = [object() for _ in range(width.partitions)]

    def one_group() -> None:
        cids = sorted({e.correlation_id for e in envelopes if e.correlation_id})
        with correlated(",".join(cids) or None):
            reasons: list[str] = []
            for dead_letters in refused:
                reasons += [d.reason.value for d in dead_letters]
            telemetry.validated(sum(len(b.metrics) for b in batches), reasons)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("validated %d devices", len(envelopes))
        confirmed = telemetry.sent(events, outputs)
        confirmed()

    return one_group


def detector_group(metrics: WorkerMetrics, width: Width) -> Callable[[], None]:
    """The detector's instrumentation for one group (streams/_app.py ``detect_alerts``): one
    readings record per partition, ``alert_events`` sent. The outbox's callback ``confirmed``
    runs is the detector's own work, not instrumentation: left out."""
    telemetry = _GroupTelemetry(metrics)
    record_cids = [new_correlation_id() for _ in range(width.burst_ids)]
    alerts = [_alert(i) for i in range(width.alert_events)]
    topic = _NamedTopic("veille.alerts")
    outputs = [_Output(topic, a.patient.encode(), b"") for a in alerts]
    events = [object() for _ in range(width.partitions)]

    def one_group() -> None:
        cids: list[str] = []
        for _ in events:
            cids += record_cids
        if alerts and log.isEnabledFor(logging.DEBUG):
            with correlated(",".join(sorted(set(cids)))):
                log.debug("%d alert events", len(alerts))
        confirmed = telemetry.sent(events, outputs, None, alerts)
        confirmed()

    return one_group


def sink_batch(metrics: SinkMetrics, k: int, width: Width) -> Callable[[], None]:
    """``run_sink``'s and ``_Database``'s instrumentation for one batch (streams/_sink.py):
    one readings record from each partition, ``care_units`` units, and a validator's dead
    letters (counted by the validator, not again here)."""
    batch = {TopicPartition("veille.readings", p): [object()] for p in range(width.partitions)}
    records = [r for rs in batch.values() for r in rs]
    record_cids = [new_correlation_id()]
    rows = SinkRows(ReadingBatches(), [], [])
    d = _dead_letter("validate")
    rows.dead_letters += [
        (d.dead_letter_id, d.stage, d.reason.value, d.detail, d.mqtt_topic, d.device_id,
         us_to_datetime(d.received_at_us), d.raw)
        for _ in range(width.dead_letters)
    ]  # fmt: skip
    for p in range(width.partitions):
        rows.per_unit[TENANT, f"unit-{p % width.care_units}"] += k
    result = WriteResult(
        readings_inserted=width.partitions * k, dead_letters_inserted=width.dead_letters
    )
    counters = SinkCounters()

    def one_batch() -> None:
        counters.polled(SINK_GROUP_ID)  # the readiness check's "still polling"
        metrics.batch.observe(len(records))
        for tp, rs in batch.items():
            metrics.consumed.labels(SINK_GROUP_ID, tp.topic).inc(len(rs))
        cids: list[str] = []
        for _ in records:  # rows_from_records
            cids += record_cids
        started = time.monotonic()
        _count_written(metrics, rows, result, time.monotonic() - started)
        if cids and log.isEnabledFor(logging.DEBUG):
            with correlated(",".join(sorted(set(cids)))):
                log.debug("stored %d readings", len(rows.readings))
        committing = time.monotonic()
        metrics.commit.labels(SINK_GROUP_ID).observe(time.monotonic() - committing)

    return one_batch


def _us_per_call(call: Callable[[], object]) -> float:
    timer = timeit.Timer(call, timer=time.process_time)
    return median(timer.repeat(REPEATS, NUMBER)) / NUMBER * 1e6


def _us_added(with_it: Callable[[], object], without: Callable[[], object]) -> float:
    """Timed in pairs, back to back, so that a drift of the machine falls on both; a
    difference within the noise reads as nothing, never as a saving."""
    a = timeit.Timer(with_it, timer=time.process_time)
    b = timeit.Timer(without, timer=time.process_time)
    differences = [a.timeit(NUMBER) - b.timeit(NUMBER) for _ in range(REPEATS)]
    return max(0.0, median(differences) / NUMBER * 1e6)


def _nothing() -> None:
    return None


def _sensor_hooks() -> Callable[[], None]:
    """The workers' commit timer is one more sensor of the Faust app, and Faust calls every
    sensor on each record in and out, each record sent, each table read and write
    (``faust.sensors.base.SensorDelegate``). The timer overrides only the commit hooks, run
    once per commit: per record it costs the base class's hooks, called as the delegate does."""
    sensor = faust.Sensor()
    # The base hooks read none of their arguments.
    tp: Any = object()
    message: Any = object()
    event: Any = object()
    stream: Any = object()
    table: Any = object()
    producer: Any = None

    def one_record() -> None:
        sensor.on_message_in(tp, 0, message)
        state = {sensor: sensor.on_stream_event_in(tp, 0, stream, event)}
        sensor.on_stream_event_out(tp, 0, stream, event, state.get(sensor))
        sensor.on_message_out(tp, 0, message)
        sent = {sensor: sensor.on_send_initiated(producer, "veille.readings", message, 4, 200)}
        sensor.on_send_completed(producer, sent[sensor], message)
        sensor.on_table_get(table, b"patient")
        sensor.on_table_set(table, b"patient", b"{}")

    return one_record


def _record_costs(k: int) -> tuple[float, float, float, float, float, float]:
    message = [_message(k)]
    cid = new_correlation_id()
    raw_with = encode_raw_records("gw", message, correlation_id=cid)[0][0]
    raw_without = encode_raw_records("gw", message)[0][0]
    batch = [_batch(k)]
    readings_with = encode_readings_records(batch, correlation_ids=[cid])[0]
    readings_without = encode_readings_records(batch)[0]
    rows = SinkRows(ReadingBatches(), [], [])
    one = batch[0]

    def count_unit() -> None:
        rows.per_unit[one.tenant, one.care_unit] += len(one.metrics)

    return (
        _us_added(
            lambda: encode_raw_records("gw", message, correlation_id=cid),
            lambda: encode_raw_records("gw", message),
        ),
        _us_added(lambda: envelopes_of(raw_with), lambda: envelopes_of(raw_without)),
        _us_added(
            lambda: encode_readings_records(batch, correlation_ids=[cid]),
            lambda: encode_readings_records(batch),
        ),
        _us_added(
            lambda: read_readings_record(readings_with),
            lambda: read_readings_record(readings_without),
        ),
        _us_added(count_unit, _nothing),
        _us_added(_sensor_hooks(), _nothing),
    )


def _stage_costs(k: int, width: Width) -> StageCosts:
    """Each stage's metrics on a registry of its own, as each runs in its own process."""
    gateway = GatewayMetrics(ComponentRegistry("gateway").registry)
    validator = WorkerMetrics(ComponentRegistry("validator").registry, "validate")
    detector = WorkerMetrics(ComponentRegistry("detector").registry, "detect")
    sink = SinkMetrics(ComponentRegistry("sink").registry)
    return StageCosts(
        _us_per_call(gateway_burst(gateway, width)),
        _us_per_call(validator_group(validator, k, width)),
        _us_per_call(detector_group(detector, width)),
        _us_per_call(sink_batch(sink, k, width)),
    )


def measure_telemetry_cost(readings_per_message: int) -> TelemetryCost:
    """About ten seconds of CPU; run it while nothing else of this process runs."""
    k = readings_per_message
    return TelemetryCost(k, _stage_costs(k, FULL), _stage_costs(k, ONE_MESSAGE), *_record_costs(k))
