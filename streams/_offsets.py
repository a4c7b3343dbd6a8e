"""End offsets as they really are, for anyone comparing positions with the log end.

Tansu 0.6 (the embedded local broker) answers ListOffsets(latest) with "first offset of the
last record batch + 1" instead of the log end (docs/LOCAL_STACK.md). Consumer lag, the
benchmark's drain check, the fault forensics and Faust's table recovery
(``_tansu_compat``) all need the true end, so they all read it here. On a real Kafka the
correction finds nothing to correct.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition

__all__ = ["true_end_offsets"]

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
