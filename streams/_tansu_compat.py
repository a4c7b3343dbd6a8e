"""Workaround for Tansu 0.6 (the embedded local broker) reporting wrong end offsets.

Symptom: ListOffsets(latest) returns "first offset of the last record batch + 1" instead of
the log end, so Faust's table recovery raises ``ConsistencyError: persisted offset is higher
than the last offset`` as soon as a changelog holds a multi-record batch (e.g. when a second
worker joins or a worker restarts). Upstream: tansu-io/tansu, ListOffsets handler in the
storage engines (memory engine returns the batch base offset). Measured and described in
docs/LOCAL_STACK.md.

Fix: after asking for end offsets, correct them with :func:`~streams._offsets.true_end_offsets`
(read the last batch of each partition and count its records). Applied only when
``VEILLE_KAFKA_LOCAL_BROKER`` is true; a real Kafka never sees this code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiokafka import TopicPartition

from veille.library_pins import FAUST_PIN, check_patchable

from ._offsets import true_end_offsets

__all__ = ["END_OFFSET_MEMBERS", "install_end_offset_workaround"]

# The member of faust's ``AIOKafkaConsumerThread`` the workaround replaces.
END_OFFSET_MEMBERS = ("_highwaters",)


def install_end_offset_workaround(bootstrap: str) -> None:
    """Patch Faust's aiokafka consumer thread to use :func:`true_end_offsets`."""
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    check_patchable(FAUST_PIN, AIOKafkaConsumerThread, END_OFFSET_MEMBERS)
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
