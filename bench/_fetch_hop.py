"""How long a record waits for a consumer on the local broker, by fetch wait.

``python -m bench._fetch_hop [--waits 30 100 250 500] [--probes 80] [--background 1200]``: a
fresh Tansu (the local stack's broker) with one 12-partition topic per wait; one consumer
per topic with that ``fetch_max_wait_ms``, a producer sending ``--background`` small records
a second across the partitions, and ``--probes`` records sent one at a time 30-90 ms apart,
each timed from its produce call to its arrival in the consumer. Apache Kafka answers a fetch
as soon as a record is there; Tansu answers after about half the wait, records or not
(docs/LOCAL_STACK.md), so each consumer hop of the pipeline adds up to half its fetch wait.
Prints one line a wait.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from veille.stack import find_tansu, free_port

__all__ = ["HopLatency", "measure_hop"]

PARTITIONS = 12
PROBE_KEY = b"probe"
SETTLE_S = 3.0  # the consumer joins its group and starts fetching before the first probe


@contextlib.contextmanager
def _tansu() -> Iterator[str]:
    """A fresh memory-only Tansu on a free port, killed on the way out."""
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    argv = [str(find_tansu()), "broker", "--listener-url", url,
            "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]  # fmt: skip
    broker = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"Tansu did not open port {port} within 10 s")
            time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        broker.kill()
        broker.wait()


def _percentile(sorted_ms: list[float], q: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, round(q / 100 * (len(sorted_ms) - 1)))]


@dataclass(frozen=True, slots=True)
class HopLatency:
    wait_ms: int
    probes: int
    p50_ms: float
    p99_ms: float
    max_ms: float


async def _background(producer: AIOKafkaProducer, topic: str, per_s: int) -> None:
    """Small records spread over the partitions, so the consumer's fetches return data."""
    rounds_per_s = 100
    per_round = max(1, per_s // rounds_per_s)
    while True:
        for i in range(per_round):
            await producer.send(topic, b"x" * 200, partition=i % PARTITIONS)
        await asyncio.sleep(1 / rounds_per_s)


async def measure_hop(
    bootstrap: str, topic: str, wait_ms: int, probes: int, background_per_s: int
) -> HopLatency:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"hop-{topic}",
        auto_offset_reset="latest", enable_auto_commit=False, fetch_max_wait_ms=wait_ms,
    )  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await consumer.start()
    await producer.start()
    arrived: dict[bytes, float] = {}

    async def consume() -> None:
        async for record in consumer:
            if record.key == PROBE_KEY and record.value is not None:
                arrived[record.value] = time.monotonic()

    tasks = [asyncio.create_task(consume())]
    if background_per_s:
        tasks.append(asyncio.create_task(_background(producer, topic, background_per_s)))
    try:
        await asyncio.sleep(SETTLE_S)
        sent: dict[bytes, float] = {}
        for i in range(probes):
            value = str(i).encode()
            sent[value] = time.monotonic()
            await producer.send_and_wait(topic, value, key=PROBE_KEY, partition=i % PARTITIONS)
            await asyncio.sleep(random.uniform(0.03, 0.09))  # noqa: S311 (spacing, not secrets)
        await asyncio.sleep(2 * wait_ms / 1000 + 1)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await producer.stop()
        await consumer.stop()
    waits = sorted((arrived[v] - t) * 1000 for v, t in sent.items() if v in arrived)
    if len(waits) < probes:
        raise RuntimeError(f"{probes - len(waits)} of {probes} probes never arrived")
    return HopLatency(wait_ms, probes, _percentile(waits, 50), _percentile(waits, 99), waits[-1])


async def _run(waits: list[int], probes: int, background_per_s: int) -> list[HopLatency]:
    with _tansu() as bootstrap:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(f"hop-{w}", PARTITIONS, 1) for w in waits])
        finally:
            await admin.close()
        results = []
        for wait in waits:
            hop = await measure_hop(bootstrap, f"hop-{wait}", wait, probes, background_per_s)
            print(
                f"fetch wait {wait} ms: produce -> consumed p50 {hop.p50_ms:.0f} ms, "
                f"p99 {hop.p99_ms:.0f} ms, max {hop.max_ms:.0f} ms ({probes} probes)",
                flush=True,
            )
            results.append(hop)
        return results


def _main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._fetch_hop")
    parser.add_argument("--waits", type=int, nargs="+", default=[30, 100, 250, 500])
    parser.add_argument("--probes", type=int, default=80)
    parser.add_argument("--background", type=int, default=1200, help="records a second")
    args = parser.parse_args()
    asyncio.run(_run(args.waits, args.probes, args.background))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
