"""The Kafka stage's ceiling: records of the pipeline's sizes produced (acks=all, as the
gateway and workers produce) and consumed back, with nothing else running, on the local
stack's broker. The slowest raw stage bounds what the pipeline can sustain.

``python -m bench._kafka_ceiling STATE_DIR RECORDS SIZE`` on a fresh local stack: one
producer sends ``RECORDS`` records of ``SIZE`` bytes to a topic of 12 partitions as fast as
the broker confirms them, then one consumer reads them all. Printed: records a second each
way and the broker's CPU microseconds per record (produce and consume together).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from veille.stack import LocalStack, create_topics

from ._proc import cpu_seconds

__all__ = ["KafkaCeiling", "measure_kafka_ceiling"]

TOPIC = "bench.ceiling"
PARTITIONS = 12
IN_FLIGHT = 2000  # sends awaited together, as the gateway keeps many unconfirmed


@dataclass(frozen=True, slots=True)
class KafkaCeiling:
    records: int
    record_bytes: int
    produced_per_s: float
    consumed_per_s: float
    broker_cpu_us_per_record: float
    client_cpu_us_per_record: float


async def measure_kafka_ceiling(
    bootstrap: str, broker_pid: int, records: int, size: int
) -> KafkaCeiling:
    await create_topics(bootstrap, [TOPIC], PARTITIONS)
    value = os.urandom(size // 2).hex().encode()[:size]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    broker0, client0 = cpu_seconds(broker_pid), time.process_time()
    try:
        t0 = time.perf_counter()
        for first in range(0, records, IN_FLIGHT):
            batch = [
                await producer.send(TOPIC, value, key=str(i % 1000).encode())
                for i in range(first, min(records, first + IN_FLIGHT))
            ]
            await asyncio.gather(*batch)
        produced_s = time.perf_counter() - t0
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        TOPIC, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
        enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    try:
        t0 = time.perf_counter()
        seen = 0
        while seen < records:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            if not batch:
                break
            seen += sum(len(rs) for rs in batch.values())
        consumed_s = time.perf_counter() - t0
    finally:
        await consumer.stop()
    broker = cpu_seconds(broker_pid) - broker0
    client = time.process_time() - client0
    return KafkaCeiling(
        records=seen, record_bytes=size, produced_per_s=records / produced_s,
        consumed_per_s=seen / consumed_s, broker_cpu_us_per_record=broker / records * 1e6,
        client_cpu_us_per_record=client / records * 1e6,
    )  # fmt: skip


def _main(state_dir: Path, records: int, size: int) -> int:
    stack = LocalStack(state_dir, partitions=1)
    stack.up()
    try:
        pid = next(s.pid for s in stack.status() if s.name == "kafka")
        assert pid is not None
        result = asyncio.run(
            measure_kafka_ceiling(stack.env()["VEILLE_KAFKA_BOOTSTRAP"], pid, records, size)
        )
    finally:
        stack.down(purge=True)
    print(json.dumps(asdict(result), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(_main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
