"""``true_end_offsets`` on the real local broker: the true end of a multi-record batch, and an
answer while the partition is being written to (a steady stream is what hung it before)."""

from __future__ import annotations

import asyncio
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.runtime import true_end_offsets
from tests.integration.conftest import RunningStack
from veille.stack import create_topics


async def _topic(bootstrap: str) -> TopicPartition:
    name = f"test-end-offsets-{uuid.uuid4().hex[:8]}"
    await create_topics(bootstrap, [name], 1)
    return TopicPartition(name, 0)


async def _reported(bootstrap: str, tp: TopicPartition) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets([tp]))
    finally:
        await consumer.stop()


async def test_the_true_end_of_a_partition_whose_last_batch_holds_many_records(
    running_stack: RunningStack,
) -> None:
    bootstrap = running_stack.env["VEILLE_KAFKA_BOOTSTRAP"]
    tp = await _topic(bootstrap)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50)
    await producer.start()
    try:
        batch = producer.create_batch()
        for i in range(25):
            batch.append(key=None, value=f"r{i}".encode(), timestamp=None)
        await (await producer.send_batch(batch, tp.topic, partition=tp.partition))
    finally:
        await producer.stop()
    reported = await _reported(bootstrap, tp)
    assert (await true_end_offsets(bootstrap, reported))[tp] == 25, reported


async def test_it_answers_while_the_partition_is_written_to(running_stack: RunningStack) -> None:
    bootstrap = running_stack.env["VEILLE_KAFKA_BOOTSTRAP"]
    tp = await _topic(bootstrap)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    stop = asyncio.Event()
    sent = 0

    async def stream() -> None:  # a record every 20 ms: never two empty 300 ms fetches
        nonlocal sent
        while not stop.is_set():
            await producer.send_and_wait(tp.topic, b"x", partition=tp.partition)
            sent += 1
            await asyncio.sleep(0.02)

    streaming = asyncio.ensure_future(stream())
    try:
        await asyncio.sleep(1.0)
        reported = await _reported(bootstrap, tp)
        started = time.monotonic()
        found = await asyncio.wait_for(true_end_offsets(bootstrap, reported), 30.0)
        took = time.monotonic() - started
        assert reported[tp] <= found[tp] <= sent, (reported, found, sent)
        assert took < 10.0, f"{took:.1f} s"  # the probe's own bound, not a speed figure
    finally:
        stop.set()
        await streaming
        await producer.stop()
