"""Where a single reading's alert spends its latency, stage by stage.

``python -m bench._alert_path RATE [--seconds 40]``: a fresh local stack and pipeline, one
step of single-reading messages at RATE with every 10th patient's SpO2 low (the bench's
latency step), then, for every ``spo2_low`` alert opened, the times of the reading that
opened it along the way: published (its planned send time), received by the gateway (the
readings record carries it), written to the raw topic, to the readings topic and to the
alerts topic (Kafka record timestamps: each producer's send time), and its alert event's row
(``recorded_at``). Prints p50 / p99 / max per stage in milliseconds. Each consumer hop on
the embedded Tansu takes up to half its fetch wait (``python -m bench._fetch_hop``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from devices import AlertEvent, envelopes_of, read_readings_record
from veille.stack import LocalStack

from ._sustain import stepper

__all__ = ["STAGES", "StageTimes", "stage_latencies"]

ABNORMAL_EVERY = 10
Key = tuple[str, int]  # (patient, the opening reading's measured time in us)
STAGES = (
    ("published -> gateway received", "published", "received"),
    ("received -> raw record", "received", "raw"),
    ("raw record -> readings record", "raw", "readings"),
    ("readings record -> alert record", "readings", "alert"),
    ("alert record -> alert event row", "alert", "row"),
    ("published -> alert event row", "published", "row"),
)


@dataclass(slots=True)
class StageTimes:
    """Microsecond times of each opening reading at each point, by (patient, measured)."""

    row: dict[Key, int]
    received: dict[Key, int]
    readings: dict[Key, int]
    alert: dict[Key, int]
    raw: dict[Key, int]

    def traced(self) -> list[Key]:
        return [k for k in self.row if k in self.readings and k in self.alert and k in self.raw]

    def at(self, point: str, key: Key) -> int:
        return key[1] if point == "published" else int(getattr(self, point)[key])


def stage_latencies(times: StageTimes) -> dict[str, list[float]]:
    """Milliseconds per stage for every traced alert, sorted."""
    keys = times.traced()
    return {
        name: sorted((times.at(end, k) - times.at(start, k)) / 1000 for k in keys)
        for name, start, end in STAGES
    }


async def _scan(
    bootstrap: str, topic: str, visit: Callable[[ConsumerRecord[bytes, bytes]], None]
) -> None:
    """Every record of ``topic`` from its start to its end at the time of the call."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        # Tansu's end offsets stop at the last batch's first record: an empty fetch ends it.
        while not await _reached(consumer, ends):
            fetched = await consumer.getmany(timeout_ms=1000, max_records=5000)
            if not fetched:
                break
            for records in fetched.values():
                for record in records:
                    visit(record)
    finally:
        await consumer.stop()


async def _reached(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


async def _times(dsn: str, bootstrap: str, raw: str, readings: str, alerts: str) -> StageTimes:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(
            "SELECT a.patient_pseudonym, (extract(epoch FROM e.at) * 1e6)::bigint, "
            "(extract(epoch FROM e.recorded_at) * 1e6)::bigint FROM alert_events e "
            "JOIN alerts a USING (alert_id) WHERE e.kind = 'opened' AND a.rule = 'spo2_low'"
        )
        times = StageTimes({(p, at): rec for p, at, rec in await cur.fetchall()}, {}, {}, {}, {})
    patients = {patient for patient, _ in times.row}

    def on_readings(record: ConsumerRecord[bytes, bytes]) -> None:
        for batch in read_readings_record(record.value or b"").batches:
            if batch.patient not in patients:
                continue
            for metric, at, received in zip(
                batch.metrics, batch.measured_at_us, batch.received_at_us, strict=True
            ):
                if metric == "spo2" and (batch.patient, at) in times.row:
                    times.readings[batch.patient, at] = record.timestamp * 1000
                    times.received[batch.patient, at] = received

    def on_alert(record: ConsumerRecord[bytes, bytes]) -> None:
        event = AlertEvent.from_json(record.value or b"")
        if event.kind.value == "opened" and event.rule == "spo2_low":
            times.alert[event.patient, event.at_us] = record.timestamp * 1000

    await _scan(bootstrap, readings, on_readings)
    await _scan(bootstrap, alerts, on_alert)
    by_received = {received: key for key, received in times.received.items()}
    devices = {patient.removeprefix("p-") for patient in patients}

    def on_raw(record: ConsumerRecord[bytes, bytes]) -> None:
        for envelope in envelopes_of(record.value or b""):
            if envelope.device_id in devices:
                for message in envelope.messages:
                    key = by_received.get(message.received_at_us)
                    if key is not None:
                        times.raw[key] = record.timestamp * 1000

    await _scan(bootstrap, raw, on_raw)
    return times


def _line(name: str, ms: list[float]) -> str:
    if not ms:
        return f"{name}: no alert traced"
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return f"{name}: p50 {ms[len(ms) // 2]:.0f}, p99 {p99:.0f}, max {ms[-1]:.0f} ms"


async def _run(stack: LocalStack, state: Path, rate: float, seconds: float) -> None:
    env = stack.env()
    topics = stack.topics
    async with stepper(stack, state) as steps:
        result = await steps.step("single", rate, seconds, ABNORMAL_EVERY)
        print(f"{rate:,.0f} msg/s for {seconds:.0f} s, sustained: {result.sustained}; "
              f"the bench's latency: {result.latency}", flush=True)  # fmt: skip
        times = await _times(
            env["VEILLE_DATABASE_URL"], env["VEILLE_KAFKA_BOOTSTRAP"],
            topics.raw, topics.readings, topics.alerts,
        )  # fmt: skip
    print(f"{len(times.row)} alerts opened, {len(times.traced())} traced through every stage")
    for name, ms in stage_latencies(times).items():
        print(_line(name, ms))


def _main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._alert_path")
    parser.add_argument("rate", type=float, help="single-reading messages a second")
    parser.add_argument("--seconds", type=float, default=40.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="veille-alert-path-") as state:
        stack = LocalStack(Path(state), partitions=12)
        stack.up()
        try:
            asyncio.run(_run(stack, Path(state), args.rate, args.seconds))
        finally:
            stack.down(purge=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
