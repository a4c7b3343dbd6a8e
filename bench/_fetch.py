"""Kafka fetch wait: how long a record waits for a consumer that is already polling for it.

At low load the pipeline's latency depends less on work than on how soon the broker answers a
pending fetch, so this probes the local broker alone: one producer, one consumer, nothing else
on the topic, the consumer assigned one partition or all of them.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

__all__ = ["FetchProbe", "probe_fetch_wait"]

SAMPLES = 8
MAX_WAITS_MS = (500, 100)  # 500 is aiokafka's default, which the sink uses


@dataclass(frozen=True, slots=True)
class FetchProbe:
    partitions_assigned: int
    fetch_max_wait_ms: int
    delays_ms: list[float]  # send to receipt by the polling consumer, one per sample


async def _probe(bootstrap: str, tps: list[TopicPartition], max_wait_ms: int) -> list[float]:
    rng = random.Random(max_wait_ms * 100 + len(tps))  # noqa: S311 - jitter, not security
    target = tps[0]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=max_wait_ms
    )
    await producer.start()
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        delays = []
        for _ in range(SAMPLES):
            # A random pause, so that sends land anywhere within the consumer's fetch cycle.
            await asyncio.sleep(rng.uniform(0.05, 0.2))
            started = time.perf_counter()
            await producer.send(target.topic, b"probe", partition=target.partition)
            await consumer.getone(target)
            delays.append((time.perf_counter() - started) * 1000)
        return delays
    finally:
        await consumer.stop()
        await producer.stop()


async def probe_fetch_wait(bootstrap: str, topic: str, partitions: int) -> list[FetchProbe]:
    """Run on a topic nobody else writes to at that moment (the pipeline is stopped)."""
    out = []
    for assigned in (1, partitions):
        tps = [TopicPartition(topic, p) for p in range(assigned)]
        for max_wait in MAX_WAITS_MS:
            out.append(FetchProbe(assigned, max_wait, await _probe(bootstrap, tps, max_wait)))
    return out
