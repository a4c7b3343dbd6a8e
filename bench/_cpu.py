"""CPU cost per reading of the pure path, with no broker or database in the way.

Each stage is what one component does to a reading between MQTT and SQL, so their sum is the
work the pipeline spends per reading outside Kafka, Faust, MQTT and PostgreSQL:

- gateway: ``plan_forward`` (topic parse, JSON decode, packing per partition, record encode);
- validate agent: raw record decode, ``validate_envelope``, readings record encode;
- detect agent: readings record decode, ``detect``;
- sink: ``rows_from_records`` (batch decode and row mapping).

``detect`` is the threshold rules alone; what the detect agent runs per batch is
``process_readings`` (screening, technical alerts, late readings, rules, trends, NEWS2),
timed as :data:`AGENT_STAGE` beside the others and left out of the total, which stays the
calibration earlier runs are compared through.

Every gateway burst holds one message per device: the effect measured here comes from the
payload size, not from the gateway's linger.
"""

from __future__ import annotations

import copy
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import ConsumerRecord

from devices import (
    KeyPartitioner,
    RawEnvelope,
    ReadingBatch,
    RegistryEntry,
    batches_of,
    encode_readings_record,
    envelopes_of,
    metric_named,
)
from ingest import InboundMessage, plan_forward
from streams import (
    DEFAULT_RULES,
    PatientState,
    ValidationLimits,
    detect,
    process_readings,
    rules_by_metric,
    validate_envelope,
)
from streams.runtime import rows_from_records
from veille.settings import Settings

from ._stats import median
from ._workload import MonitorStream, payloads

__all__ = ["AGENT_STAGE", "STAGES", "CpuResult", "run_cpu_bench"]

GATEWAY_ID = "gw-bench"
PARTITIONS = 12


@dataclass(frozen=True, slots=True)
class _Lookup:
    """The registry as the worker's directory serves it: an in-memory dict."""

    entries: dict[str, RegistryEntry]

    def entry_for(self, device_id: str) -> RegistryEntry | None:
        return self.entries.get(device_id)


@dataclass(slots=True)
class _Inputs:
    """Everything one batch size needs, prepared outside the timed sections."""

    k: int
    readings: int
    bursts: list[list[InboundMessage]]
    raw_records: list[bytes]
    envelopes: list[RawEnvelope]
    batches: list[ReadingBatch]
    records: list[ConsumerRecord[bytes, bytes]]
    warm_states: dict[str, PatientState]
    lookup: _Lookup
    now_us: int
    limits: ValidationLimits
    settings: Settings


def _plan_forward(x: _Inputs) -> Callable[[], object]:
    partitioner = KeyPartitioner(PARTITIONS)
    return lambda: [plan_forward(burst, GATEWAY_ID, partitioner) for burst in x.bursts]


def _raw_decode(x: _Inputs) -> Callable[[], object]:
    return lambda: [envelopes_of(r) for r in x.raw_records]


def _validate(x: _Inputs) -> Callable[[], object]:
    def run() -> object:
        return [
            validate_envelope(e, lookup=x.lookup, now_us=x.now_us, limits=x.limits)
            for e in x.envelopes
        ]

    return run


def _batch_json(x: _Inputs) -> Callable[[], object]:
    return lambda: [batches_of(encode_readings_record([b])) for b in x.batches]


def _detect(x: _Inputs) -> Callable[[], object]:
    # detect() skips readings not newer than the state's last one, so every repetition starts
    # from the same warm state (copied here, untimed) instead of the previous repetition's.
    states = copy.deepcopy(x.warm_states)
    return lambda: [detect(b, states[b.patient]) for b in x.batches]


def _process(x: _Inputs) -> Callable[[], object]:
    states = copy.deepcopy(x.warm_states)  # as ``_detect``: the same warm state each time
    rules = rules_by_metric(DEFAULT_RULES)
    return lambda: [
        process_readings(b, states[b.patient], rules, now_us=x.now_us) for b in x.batches
    ]


def _sink_rows(x: _Inputs) -> Callable[[], object]:
    return lambda: rows_from_records(x.records, x.settings)


STAGES: tuple[tuple[str, Callable[[_Inputs], Callable[[], object]]], ...] = (
    ("gateway `plan_forward` (topic, JSON decode, packing, record encode)", _plan_forward),
    ("raw record decode (`envelopes_of`)", _raw_decode),
    ("`validate_envelope` (pydantic, units, plausibility)", _validate),
    ("readings record encode + decode", _batch_json),
    ("`detect`, warm patient state", _detect),
    ("sink `rows_from_records` (decode + row mapping)", _sink_rows),
)
# Timed with the stages, not in the total (see the module's docstring).
AGENT_STAGE: tuple[str, Callable[[_Inputs], Callable[[], object]]] = (
    "`process_readings`, the detect agent's whole work per batch, warm patient state",
    _process,
)


@dataclass(frozen=True, slots=True)
class CpuResult:
    batch_sizes: tuple[int, ...]
    readings: int  # per batch size and repetition
    devices: int
    repetitions: int
    metrics: dict[str, int]  # readings per metric in the workload
    converted: int  # readings sent in a unit other than the canonical one
    # samples[stage][k]: microseconds per reading, one per repetition
    samples: dict[str, dict[int, list[float]]]

    def median_us(self, stage: str, k: int) -> float:
        return median(self.samples[stage][k])

    def totals(self, k: int) -> list[float]:
        """Per repetition, the sum of :data:`STAGES`: the pure-path cost of one reading."""
        names = [name for name, _ in STAGES]
        return [sum(self.samples[s][k][r] for s in names) for r in range(self.repetitions)]

    def total_us(self, k: int) -> float:
        return median(self.totals(k))

    def ratio(self, stage: str | None, k: int, base: int) -> float:
        """Median over repetitions of cost(k) / cost(base), both from the same repetition."""
        if stage is None:
            a, b = self.totals(k), self.totals(base)
        else:
            a, b = self.samples[stage][k], self.samples[stage][base]
        return median([x / y for x, y in zip(a, b, strict=True)])


def _prepare(streams: list[MonitorStream], k: int, now_us: int, settings: Settings) -> _Inputs:
    bursts: list[list[InboundMessage]] = []
    mid = 0
    for round_ in payloads(streams, k):
        burst = []
        for p in round_:
            mid += 1
            burst.append(InboundMessage(p.topic, p.payload, mid, 1, now_us, False))
        bursts.append(burst)
    raw_records: list[bytes] = []
    partitioner = KeyPartitioner(PARTITIONS)
    for burst in bursts:
        plan = plan_forward(burst, GATEWAY_ID, partitioner)
        if plan.dead_letters:
            raise RuntimeError(f"gateway rejected bench input: {plan.dead_letters[0]}")
        raw_records += [r.value for r in plan.records]
    envelopes = [e for r in raw_records for e in envelopes_of(r)]
    lookup = _Lookup({s.device_id: s.registry_entry(now_us - 3_600_000_000) for s in streams})
    limits = ValidationLimits(
        future_tolerance_us=int(settings.future_tolerance_s * 1e6),
        max_age_us=int(settings.max_age_s * 1e6),
    )
    batches: list[ReadingBatch] = []
    for envelope in envelopes:
        result = validate_envelope(envelope, lookup=lookup, now_us=now_us, limits=limits)
        if result.dead_letters:
            raise RuntimeError(f"validation rejected bench input: {result.dead_letters[0]}")
        batches.extend(result.batches)
    readings = sum(len(b) for b in batches)
    topic = settings.topics.readings
    records: list[ConsumerRecord[bytes, bytes]] = []
    for offset, b in enumerate(batches):
        value = encode_readings_record([b])
        key = b.patient.encode()
        records.append(
            ConsumerRecord(topic, 0, offset, 0, 0, key, value, None, len(key), len(value), ())
        )
    return _Inputs(
        k, readings, bursts, raw_records, envelopes, batches, records, _warm_states(batches),
        lookup,
        now_us, limits, settings,
    )  # fmt: skip


def _warm_states(batches: list[ReadingBatch]) -> dict[str, PatientState]:
    """Each patient's state after one earlier reading of every metric it has: every key of
    the state exists before the timed runs, as in a worker that has run for a while."""
    first: dict[str, ReadingBatch] = {}
    values: dict[str, dict[str, float | None]] = {}
    earliest: dict[str, int] = {}
    for b in batches:
        first.setdefault(b.patient, b)
        for metric, value in zip(b.metrics, b.values, strict=True):
            values.setdefault(b.patient, {}).setdefault(metric, value)
        start = min(b.measured_at_us)
        earliest[b.patient] = min(earliest.get(b.patient, start), start)
    states: dict[str, PatientState] = {}
    for patient, b in first.items():
        metrics = tuple(values[patient])
        at = earliest[patient] - 1_000_000
        warm = ReadingBatch(
            b.tenant, b.care_unit, b.patient, b.device_id, metrics,
            tuple(values[patient][m] for m in metrics), tuple(at for _ in metrics),
            tuple(0 for _ in metrics), tuple(at for _ in metrics),
        )  # fmt: skip
        states[patient] = {}
        detect(warm, states[patient])
    return states


def run_cpu_bench(
    streams: list[MonitorStream],
    *,
    batch_sizes: tuple[int, ...],
    repetitions: int,
    now_us: int,
    settings: Settings,
    progress: Callable[[str], None],
) -> CpuResult:
    """Time every stage on every batch size, interleaved so that noise hits all alike."""
    inputs = [_prepare(streams, k, now_us, settings) for k in batch_sizes]
    counts = {x.readings for x in inputs}
    if len(counts) != 1:
        raise RuntimeError(f"batch sizes hold different readings: {counts}")
    timed = (*STAGES, AGENT_STAGE)
    samples: dict[str, dict[int, list[float]]] = {name: {} for name, _ in timed}
    for rep in range(repetitions + 1):  # repetition 0 warms caches and is not kept
        for x in inputs:
            for name, stage in timed:
                run = stage(x)
                gc.collect()
                started = time.perf_counter_ns()
                run()
                elapsed_ns = time.perf_counter_ns() - started
                if rep:
                    samples[name].setdefault(x.k, []).append(elapsed_ns / 1000 / x.readings)
        if rep:
            progress(f"cpu: repetition {rep}/{repetitions} done")
    metrics: dict[str, int] = {}
    converted = 0
    for stream in streams:
        for reading in stream.readings:
            metrics[reading["metric"]] = metrics.get(reading["metric"], 0) + 1
            entry = metric_named(reading["metric"])
            converted += entry is not None and reading["unit"] != entry.unit
    return CpuResult(
        batch_sizes, counts.pop(), len(streams), repetitions, metrics, converted, samples
    )
