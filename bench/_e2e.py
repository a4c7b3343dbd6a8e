"""End to end through real processes, as the integration tests run them: MQTT (Mosquitto) ->
gateway -> Kafka (Tansu) -> Faust worker -> sink -> PostgreSQL.

One publisher sends a fixed number of readings, devices in round-robin order as a fleet
would, either as fast as the broker takes them (QoS 1) or at a set pace. Every run uses its
own devices and patients, all provisioned before the worker starts, so no run waits for a
registry reload and no reading is deduplicated against an earlier run's. Around each run the
CPU time of every process and the Kafka records written are read, to say where the cost of
a reading goes.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from aiokafka import AIOKafkaConsumer, TopicPartition
from psycopg.rows import TupleRow

from devices import batches_of, envelopes_of, now_us
from ingest import MqttEndpoint
from store import upsert_bindings
from streams.runtime import true_end_offsets
from veille.publisher import FleetPublisher, simulator_endpoint
from veille.settings import TopicNames
from veille.stack import ComponentProcess, LocalStack, PipelineProcesses

from ._proc import cpu_seconds, own_cpu_seconds
from ._workload import DEVICE_TYPE, MonitorStream, OutgoingPayload, monitor_streams, payloads

__all__ = ["PIPELINE", "PROCESSES", "PipelineBench", "RunPlan", "RunResult", "run_pipeline_bench"]

IDLE_S = 5.0  # CPU of an idle pipeline, to read the paced run against
PUBLISH_TIMEOUT_S = 120.0  # Mosquitto PUBACKs on receipt; this only guards a broken broker
HOP_READ_TIMEOUT_S = 30.0
STALL_TIMEOUT_S = 45.0  # no new stored row for this long after publishing: give up on the run
POLL_S = 0.25  # coarse on purpose: the probe query competes with the sink for 2 cores
PIPELINE = ("gateway", "worker", "sink", "Kafka (Tansu)", "MQTT (Mosquitto)", "PostgreSQL")
PROCESSES = (
    "gateway",
    "worker",
    "sink",
    "Kafka (Tansu)",
    "MQTT (Mosquitto)",
    "PostgreSQL",
    "publisher (bench)",
)


@dataclass(frozen=True, slots=True)
class RunPlan:
    label: str
    readings_per_message: int
    readings: int
    devices: int
    seed: int
    rate: float | None = None  # readings per second; None: as fast as Mosquitto acknowledges
    reported: bool = True  # the warm-up run is not


@dataclass(frozen=True, slots=True)
class RunResult:
    plan: RunPlan
    messages: int
    acked: int  # readings in messages Mosquitto PUBACKed
    stored: int
    dead_letters: int
    publish_s: float  # first publish to last PUBACK
    store_s: float | None  # first publish to the stored_at of the last row; None if incomplete
    latency_ms: tuple[float, float, float] | None  # stored_at - received_at: p50, p95, max
    cpu_s: dict[str, float]  # per process in PROCESSES, over the run
    records: dict[str, int]  # Kafka records written to the raw and readings topics
    # p50, p95 ms from the gateway's receipt to the creation of the raw and the batch record
    to_raw_ms: tuple[float, float] | None
    to_batch_ms: tuple[float, float] | None

    @property
    def complete(self) -> bool:
        return self.acked == self.plan.readings and self.stored == self.plan.readings

    @property
    def publish_rate(self) -> float:
        return self.acked / self.publish_s

    @property
    def stored_rate(self) -> float | None:
        return self.stored / self.store_s if self.store_s else None

    def cpu_us_per_reading(self, process: str | None = None) -> float:
        """CPU microseconds per stored reading of one process, or of the whole pipeline
        (every process but the publisher, which stands for the devices) when None."""
        spent = sum(self.cpu_s[p] for p in PIPELINE) if process is None else self.cpu_s[process]
        return spent * 1e6 / max(self.stored, 1)


@dataclass(frozen=True, slots=True)
class PipelineBench:
    runs: list[RunResult]
    idle_cores: dict[str, float]  # per process: CPU seconds per second with nothing published
    failure: str | None


@dataclass(frozen=True, slots=True)
class _Prepared:
    plan: RunPlan
    streams: list[MonitorStream]
    since: datetime  # earliest measured_at of the run: lets queries prune partitions


@dataclass(frozen=True, slots=True)
class _Pids:
    components: dict[str, int]
    services: dict[str, int]

    def cpu(self) -> dict[str, float]:
        out = {name: cpu_seconds(pid) for name, pid in self.components.items()}
        # The two Faust roles (validator, detector) are one "worker" in the figures.
        # (Kept apart too: the sustained-rate section shows them on rows of their own.)
        out["worker"] = (
            out.get("validator", 0.0) + out.get("detector", 0.0) + out.get("worker", 0.0)
        )
        out["Kafka (Tansu)"] = cpu_seconds(self.services["kafka"])
        out["MQTT (Mosquitto)"] = cpu_seconds(self.services["mqtt"])
        out["PostgreSQL"] = cpu_seconds(self.services["postgres"], with_children=True)
        out["publisher (bench)"] = own_cpu_seconds()
        return out


def _publish_all(
    publisher: FleetPublisher,
    rounds: list[list[OutgoingPayload]],
    rate: float | None,
    abort: threading.Event,
) -> float:
    """Publish everything, then wait for the last PUBACK; returns perf_counter at that moment.
    Runs in a thread; ``abort`` ends it early when the run fails on the event loop."""
    started = time.perf_counter()
    sent = 0
    for round_ in rounds:
        for p in round_:
            if abort.is_set():
                return time.perf_counter()
            if rate is not None:
                delay = started + sent / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            publisher.publish(p.topic, p.payload, p.readings)
            sent += p.readings
    deadline = time.perf_counter() + PUBLISH_TIMEOUT_S
    # Short waits, so an abort is noticed; each returns at once when the last PUBACK lands.
    while time.perf_counter() < deadline and not abort.is_set():
        if publisher.wait_pending_at_most(0, timeout_s=0.1) == 0:
            break
    return time.perf_counter()


async def _provision(dsn: str, prepared: list[_Prepared]) -> None:
    """One connection per run, concurrently: the registry commits every device on its own."""
    bound_since = now_us() - 3_600_000_000

    async def provision(p: _Prepared) -> None:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await upsert_bindings(conn, [(s.binding(bound_since), DEVICE_TYPE) for s in p.streams])

    await asyncio.gather(*(provision(p) for p in prepared))


Offsets = dict[TopicPartition, int]


async def _topic_ends(bootstrap: str, topics: tuple[str, ...], partitions: int) -> Offsets:
    """End offset of every partition of ``topics``, corrected for Tansu."""
    tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await probe.start()
    try:
        reported: Offsets = dict(await probe.end_offsets(tps))
    finally:
        await probe.stop()
    return await true_end_offsets(bootstrap, reported)


def _written(before: Offsets, after: Offsets, topic: str) -> int:
    return sum(end - before.get(tp, 0) for tp, end in after.items() if tp.topic == topic)


async def _hop_latencies(
    bootstrap: str, before: Offsets, after: Offsets, topics: TopicNames
) -> dict[str, tuple[float, float]]:
    """p50 and p95 (ms) from the gateway's MQTT receipt to the creation of the raw record and
    of the reading-batch record, from the records the run wrote (producer timestamps)."""
    wanted = {tp: (before.get(tp, 0), end) for tp, end in after.items() if end > before.get(tp, 0)}
    delays: dict[str, list[float]] = {topics.raw: [], topics.readings: []}
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await probe.start()
    try:
        probe.assign(list(wanted))
        for tp, (start, _) in wanted.items():
            probe.seek(tp, start)
        pending = set(wanted)
        deadline = time.monotonic() + HOP_READ_TIMEOUT_S
        while pending and time.monotonic() < deadline:
            for tp, records in (await probe.getmany(timeout_ms=500)).items():
                for record in records:
                    if record.offset < wanted[tp][1] and record.value is not None:
                        delays[tp.topic] += _record_delays(tp.topic, record.value,
                                                           record.timestamp, topics)  # fmt: skip
                if records and records[-1].offset + 1 >= wanted[tp][1]:
                    pending.discard(tp)
    finally:
        await probe.stop()
    return {
        topic: (_percentile(values, 0.5), _percentile(values, 0.95))
        for topic, values in delays.items()
        if values
    }


def _record_delays(topic: str, value: bytes, timestamp_ms: int, topics: TopicNames) -> list[float]:
    """Per reading: record creation time minus the gateway's receipt, in ms."""
    if topic == topics.raw:
        return [
            timestamp_ms - m.received_at_us / 1000
            for envelope in envelopes_of(value)
            for m in envelope.messages
            for _ in range(_readings_in(m.payload))
        ]
    return [timestamp_ms - r / 1000 for b in batches_of(value) for r in b.received_at_us]


def _readings_in(payload: object) -> int:
    if isinstance(payload, dict) and isinstance(payload.get("readings"), list):
        return len(payload["readings"])
    return 1


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _stored(
    conn: psycopg.AsyncConnection[TupleRow], ids: list[str], since: datetime
) -> tuple[int, datetime | None]:
    cur = await conn.execute(
        "SELECT count(*), max(stored_at) FROM readings "
        "WHERE device_id = ANY(%s) AND measured_at >= %s",
        (ids, since),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0]), row[1]


async def _latency_ms(
    conn: psycopg.AsyncConnection[TupleRow], ids: list[str], since: datetime
) -> tuple[float, float, float] | None:
    cur = await conn.execute(
        """SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lat),
                  percentile_cont(0.95) WITHIN GROUP (ORDER BY lat), max(lat)
           FROM (SELECT extract(epoch FROM stored_at - received_at) * 1000 AS lat
                 FROM readings WHERE device_id = ANY(%s) AND measured_at >= %s) AS t""",
        (ids, since),
    )
    row = await cur.fetchone()
    if row is None or row[0] is None:
        return None
    return float(row[0]), float(row[1]), float(row[2])


async def _dead_letters(conn: psycopg.AsyncConnection[TupleRow], ids: list[str]) -> int:
    cur = await conn.execute("SELECT count(*) FROM dead_letters WHERE device_id = ANY(%s)", (ids,))
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def _run_once(
    p: _Prepared, broker: MqttEndpoint, dsn: str, components: list[ComponentProcess], pids: _Pids
) -> tuple[int, int, int, float, float | None, dict[str, float]]:
    """Publish one run and wait until it is stored (or stalls); returns
    (messages, acked, stored, publish_s, store_s, cpu_s)."""
    rounds = payloads(p.streams, p.plan.readings_per_message)
    messages = sum(len(r) for r in rounds)
    ids = [s.device_id for s in p.streams]
    publisher = await asyncio.to_thread(FleetPublisher, broker, f"bench-{p.plan.label}")
    abort = threading.Event()
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        try:
            cpu_before = pids.cpu()
            started_wall = datetime.now(UTC)
            started = time.perf_counter()
            publishing = asyncio.ensure_future(
                asyncio.to_thread(_publish_all, publisher, rounds, p.plan.rate, abort)
            )
            stored, last_stored_at = 0, None
            last_progress = time.perf_counter()
            while True:
                await asyncio.sleep(POLL_S)
                count, last_stored_at = await _stored(conn, ids, p.since)
                if count != stored:
                    stored, last_progress = count, time.perf_counter()
                if stored >= p.plan.readings and publishing.done():
                    break
                if any(not c.alive() for c in components) or (
                    publishing.done() and time.perf_counter() - last_progress > STALL_TIMEOUT_S
                ):
                    break
            acked_at = await publishing
            cpu_after = pids.cpu()
        finally:
            abort.set()
            await asyncio.to_thread(publisher.close)
    store_s = None
    if stored == p.plan.readings and last_stored_at is not None:
        store_s = (last_stored_at - started_wall).total_seconds()
    cpu = {name: cpu_after[name] - cpu_before[name] for name in PROCESSES}
    acked = publisher.counters.readings_acked
    return messages, acked, stored, acked_at - started, store_s, cpu


async def _measure(
    p: _Prepared,
    stack_env: dict[str, str],
    components: list[ComponentProcess],
    pids: _Pids,
    ends_before: Offsets,
    topics: TopicNames,
) -> tuple[RunResult, Offsets]:
    dsn = stack_env["VEILLE_DATABASE_URL"]
    bootstrap = stack_env["VEILLE_KAFKA_BOOTSTRAP"]
    partitions = int(stack_env["VEILLE_PARTITIONS"])
    messages, acked, stored, publish_s, store_s, cpu = await _run_once(
        p, simulator_endpoint(stack_env), dsn, components, pids
    )
    ends_after = await _topic_ends(bootstrap, (topics.raw, topics.readings), partitions)
    hops = await _hop_latencies(bootstrap, ends_before, ends_after, topics)
    ids = [s.device_id for s in p.streams]
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        dead = await _dead_letters(conn, ids)
        latency = await _latency_ms(conn, ids, p.since)
    result = RunResult(
        p.plan, messages, acked, stored, dead, publish_s, store_s, latency, cpu,
        {"raw": _written(ends_before, ends_after, topics.raw),
         "readings": _written(ends_before, ends_after, topics.readings)},
        hops.get(topics.raw), hops.get(topics.readings),
    )  # fmt: skip
    return result, ends_after


def _prepare(plan: RunPlan) -> _Prepared:
    streams = monitor_streams(
        patients=plan.devices,
        readings_per_patient=plan.readings // plan.devices,
        seed=plan.seed,
        end_us=now_us(),
        prefix=f"bench-{plan.label}",
    )
    since = min(datetime.fromisoformat(str(s.readings[0]["measured_at"])) for s in streams)
    return _Prepared(plan, streams, since)


async def run_pipeline_bench(
    stack: LocalStack,
    state_dir: Path,
    plans: list[RunPlan],
    *,
    progress: Callable[[str], None],
) -> PipelineBench:
    """Run ``plans`` in order on one pipeline, measuring the idle pipeline after the first
    (warm-up) run. When a component dies, the runs after it are skipped, earlier ones kept."""
    for plan in plans:
        if plan.readings % (plan.devices * plan.readings_per_message):
            raise ValueError(f"{plan.label}: readings must split evenly over devices and messages")
    stack_env = stack.env()
    prepared = [_prepare(plan) for plan in plans]
    await _provision(stack_env["VEILLE_DATABASE_URL"], prepared)
    progress(f"e2e: provisioned {sum(len(p.streams) for p in prepared)} devices")
    services = {s.name: s.pid for s in stack.status() if s.pid is not None}
    topics = stack.topics
    results: list[RunResult] = []
    idle: dict[str, float] = {}
    with PipelineProcesses.for_stack(stack_env, state_dir) as processes:
        components = processes.components
        progress("e2e: gateway, worker and sink running")
        pids = _Pids({c.name: c.pid for c in components if c.pid is not None}, services)
        ends = await _topic_ends(
            stack_env["VEILLE_KAFKA_BOOTSTRAP"],
            (topics.raw, topics.readings),
            int(stack_env["VEILLE_PARTITIONS"]),
        )
        for p in prepared:
            result, ends = await _measure(p, stack_env, components, pids, ends, topics)
            progress(
                f"e2e: {p.plan.label}: acked {result.acked:,}, stored {result.stored:,} "
                f"of {p.plan.readings:,} in {result.store_s or float('nan'):.1f} s, "
                f"{result.records['raw']:,} raw records"
            )
            results.append(result)
            crashed = [c for c in components if not c.alive()]
            if crashed:
                tails = "\n".join(f"--- {c.name}:\n{c.log_tail(1500)}" for c in crashed)
                progress(f"e2e: component(s) died during {p.plan.label}:\n{tails}")
                names = ", ".join(c.name for c in crashed)
                failure = f"{names} exited during {p.plan.label}; later runs skipped"
                return PipelineBench(results, idle, failure)
            if not idle:
                idle = await _idle_cores(pids)
                progress(f"e2e: idle pipeline measured for {IDLE_S:.0f} s")
    return PipelineBench(results, idle, None)


async def _idle_cores(pids: _Pids) -> dict[str, float]:
    before = pids.cpu()
    started = time.perf_counter()
    await asyncio.sleep(IDLE_S)
    after = pids.cpu()
    elapsed = time.perf_counter() - started
    return {name: (after[name] - before[name]) / elapsed for name in PROCESSES}
