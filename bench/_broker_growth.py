"""How the local broker's cost grows with the records a partition holds.

``python -m bench._broker_growth [--levels 6] [--per-level 50000]``: one partition on a
temporary local stack filled with 3,000-byte records (the size of a detector's patient state
in its changelog) in levels; after each level, the broker's CPU (from /proc) for producing the
level, for one ListOffsets request (aiokafka ``end_offsets``, what the lag probes send) and per
record for a consumer reading small records at the tail while they are produced (what every
stage does). Apache Kafka finds an offset through its index, whatever the partition holds;
Tansu's memory storage, the local stack's broker, does not, which is why ``make bench``
searches each payload shape on a fresh stack (docs/BENCHMARKS.md). Prints one line a level.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from veille.stack import LocalStack, create_topics

__all__ = ["GrowthLevel", "measure_growth"]

TOPIC = "broker-growth"
STATE_BYTES = 3_000
TAIL_RECORDS = 2_000
TAIL_BYTES = 300
LIST_OFFSETS_CALLS = 100


@dataclass(frozen=True, slots=True)
class GrowthLevel:
    records: int  # held by the partition after this level
    produce_us_per_record: float  # broker CPU
    list_offsets_ms: float  # broker CPU per request
    tail_us_per_record: float  # broker CPU per record produced and fetched at the tail


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _tail_cost(bootstrap: str, producer: AIOKafkaProducer, pid: int) -> float:
    tp = TopicPartition(TOPIC, 0)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, (await consumer.end_offsets([tp]))[tp])
        before = _cpu_s(pid)

        async def feed() -> None:
            for i in range(TAIL_RECORDS):
                await producer.send(TOPIC, b"t" * TAIL_BYTES, key=b"tail")
                if i % 20 == 0:
                    await asyncio.sleep(0.005)  # a stream, not a flood

        feeding = asyncio.ensure_future(feed())
        seen = 0
        while seen < TAIL_RECORDS:
            batches = await consumer.getmany(timeout_ms=500)
            seen += sum(len(records) for records in batches.values())
        await feeding
        return (_cpu_s(pid) - before) / TAIL_RECORDS * 1e6
    finally:
        await consumer.stop()


async def measure_growth(
    bootstrap: str, pid: int, *, levels: int, per_level: int
) -> list[GrowthLevel]:
    await create_topics(bootstrap, [TOPIC], 1)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256 * 1024)
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await producer.start()
    await probe.start()
    tp = TopicPartition(TOPIC, 0)
    out: list[GrowthLevel] = []
    held = 0
    try:
        for _ in range(levels):
            before = _cpu_s(pid)
            sent = [
                await producer.send(TOPIC, b"s" * STATE_BYTES, key=str(i % 1000).encode())
                for i in range(per_level)
            ]
            await asyncio.gather(*sent)
            produce = (_cpu_s(pid) - before) / per_level * 1e6
            before = _cpu_s(pid)
            for _ in range(LIST_OFFSETS_CALLS):
                await probe.end_offsets([tp])
            list_offsets = (_cpu_s(pid) - before) / LIST_OFFSETS_CALLS * 1e3
            tail = await _tail_cost(bootstrap, producer, pid)
            held += per_level + TAIL_RECORDS
            out.append(GrowthLevel(held, produce, list_offsets, tail))
            print(
                f"{held:>9,} records held: produce {produce:5.1f} us/record, ListOffsets "
                f"{list_offsets:5.2f} ms/request, tail fetch {tail:6.1f} us/record",
                flush=True,
            )
    finally:
        await producer.stop()
        await probe.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._broker_growth")
    parser.add_argument("--levels", type=int, default=6)
    parser.add_argument("--per-level", type=int, default=50_000)
    args = parser.parse_args(argv)
    state_dir = Path(tempfile.mkdtemp(prefix="veille-broker-growth-"))
    stack = LocalStack(state_dir, partitions=1)
    try:
        stack.up()
        pid = next(s.pid for s in stack.status() if s.name == "kafka")
        if pid is None:
            print("the local broker did not start", file=sys.stderr)
            return 1
        asyncio.run(
            measure_growth(
                stack.env()["VEILLE_KAFKA_BOOTSTRAP"],
                pid,
                levels=args.levels,
                per_level=args.per_level,
            )  # fmt: skip
        )
    finally:
        stack.down(purge=True)
        shutil.rmtree(state_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
