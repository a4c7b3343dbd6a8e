"""Workaround for Tansu 0.6 (the embedded local broker) reporting wrong end offsets.

Symptom: ListOffsets(latest) returns "first offset of the last record batch + 1" instead of
the log end, so Faust's table recovery raises ``ConsistencyError: persisted offset is higher
than the last offset`` as soon as a changelog holds a multi-record batch (e.g. when a second
worker joins or a worker restarts). Upstream: tansu-io/tansu, ListOffsets handler in the
storage engines (memory engine returns the batch base offset). Measured and described in
docs/LOCAL_STACK.md.

Fix: after asking for end offsets, read the last batch of each partition with a throw-away
consumer and count its records. Applied only when ``VEILLE_KAFKA_LOCAL_BROKER`` is true;
a real Kafka never sees this code.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

__all__ = ["install_end_offset_workaround", "true_end_offsets"]

log = logging.getLogger(__name__)

_PROBE_FETCH_MS = 300


async def true_end_offsets(
    bootstrap: str, reported: Mapping[TopicPartition, int]
) -> dict[TopicPartition, int]:
    """Correct Tansu's end offsets by reading from each partition's last batch to its end."""
    result = dict(reported)
    probe_tps = [tp for tp, end in reported.items() if end > 0]
    if not probe_tps:
        return result
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await probe.start()
    try:
        probe.assign(probe_tps)
        for tp in probe_tps:
            probe.seek(tp, reported[tp] - 1)
        idle_rounds = 0
        while idle_rounds < 2:
            batch = await probe.getmany(timeout_ms=_PROBE_FETCH_MS)
            if not batch:
                idle_rounds += 1
                continue
            idle_rounds = 0
            for tp, records in batch.items():
                if records:
                    result[tp] = max(result[tp], records[-1].offset + 1)
    finally:
        await probe.stop()
    corrected = {tp: (reported[tp], end) for tp, end in result.items() if end != reported[tp]}
    if corrected:
        log.info("Tansu end offsets corrected (reported, true): %s", corrected)
    return result


def install_end_offset_workaround(bootstrap: str) -> None:
    """Patch Faust's aiokafka consumer thread to use :func:`true_end_offsets`."""
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    thread_class: Any = AIOKafkaConsumerThread
    if getattr(thread_class, "_veille_tansu_patched", False):
        return
    original = thread_class._highwaters

    async def _highwaters(self: Any, partitions: list[TopicPartition]) -> Mapping[Any, int]:
        reported: Mapping[TopicPartition, int] = await original(self, partitions)
        if self.consumer.in_transaction:
            return reported
        return await true_end_offsets(bootstrap, reported)

    thread_class._highwaters = _highwaters
    thread_class._veille_tansu_patched = True
