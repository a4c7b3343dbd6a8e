"""End offsets as they really are, for anyone comparing positions with the log end.

Tansu 0.6 (the embedded local broker) answers ListOffsets(latest) with "first offset of the
last record batch + 1" instead of the log end (docs/LOCAL_STACK.md). Consumer lag, the
benchmark's drain check, the fault forensics and Faust's table recovery
(``_tansu_compat``) all need the true end, so they all read it here. On a real Kafka the
correction finds nothing to correct.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition

__all__ = ["true_end_offsets"]

log = logging.getLogger(__name__)

_PROBE_FETCH_MS = 300
_PROBE_DEADLINE_S = 10.0  # a fetch answers in milliseconds; past this, keep the figure


async def true_end_offsets(
    bootstrap: str, reported: Mapping[TopicPartition, int]
) -> dict[TopicPartition, int]:
    """Correct Tansu's end offsets: read each partition's last batch (the one starting at
    ``reported - 1``) and take the end of what the first fetch returns.

    A snapshot, as ListOffsets is: records written since are not chased. Reading on until two
    fetches came back empty never ended under a steady stream (a changelog written by the
    other detector, a busy readings topic); Faust's table recovery then waited on it until
    its timeout and a detector crashed as a second one joined (fault run of 2026-12-04,
    scale #4). A partition that returns nothing within :data:`_PROBE_DEADLINE_S` keeps its
    reported offset."""
    result = dict(reported)
    pending = {tp for tp, end in reported.items() if end > 0}
    if not pending:
        return result
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await probe.start()
    try:
        probe.assign(sorted(pending))
        for tp in pending:
            probe.seek(tp, reported[tp] - 1)
        deadline = time.monotonic() + _PROBE_DEADLINE_S
        while pending and time.monotonic() < deadline:
            batch = await probe.getmany(*pending, timeout_ms=_PROBE_FETCH_MS)
            for tp, records in batch.items():
                if records and tp in pending:  # one fetch holds whole batches
                    result[tp] = max(result[tp], records[-1].offset + 1)
                    pending.discard(tp)
                    probe.pause(tp)
    finally:
        await probe.stop()
    if pending:
        log.warning("no record read at the reported end of %s: kept as reported", sorted(pending))
    corrected = {tp: (reported[tp], end) for tp, end in result.items() if end != reported[tp]}
    if corrected:
        log.info("Tansu end offsets corrected (reported, true): %s", corrected)
    return result
