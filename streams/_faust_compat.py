"""Workaround for faust-streaming 0.15 committing offsets of records it never processed
across a rebalance.

Symptom (seen here once in six two-worker runs): 6 to 7 consecutive offsets per partition
lost at a rebalance, never processed by either worker. Cause, in faust's own code:
``Consumer.on_partitions_revoked`` forgets the acked offsets and the committed offset of
the revoked partitions, then ``App._on_partitions_revoked`` suspends flow control and waits
for the streams to drain, committing as it waits. Meanwhile the stream iterator acks every
record it skips because flow control is suspended or its generation is stale
(``Stream._py_aiter``: ``value = skipped_value`` ... ``event.ack()``), and an in-flight
event may finish after the records behind it were dropped by ``flow_control.clear()``.
Those acks land in the emptied bookkeeping; with no committed offset left to anchor it,
``Consumer._new_offset`` commits the end of the first consecutive run of acked offsets, so
the next owner starts after records nobody processed. Upstream: faust-streaming/faust
#527 and #315 (offsets skipped after an exception or a rebalance, open), #312 (wrong offset
committed when acks have a gap).

Fix: an ack of a record fetched under an earlier generation, or made while flow control is
suspended (a rebalance is under way), releases the record but never marks its offset as
committable. Its partition's new owner (maybe this worker) reads it again from the last
real commit; downstream keys absorb the repeat. Applied to every broker: the bug is
Faust's, not the broker's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

__all__ = ["guard_ack", "install_rebalance_ack_guard"]

log = logging.getLogger(__name__)

Ack = Callable[[Any, Any], bool]


def _from_revoked_assignment(consumer: Any, message: Any) -> bool:
    app = consumer.app
    generation = message.generation_id
    stale = generation is not None and generation != app.consumer_generation_id
    return stale or not app.flow_control.is_active()


def guard_ack(original: Ack) -> Ack:
    """``Consumer.ack`` that never makes a record of a revoked assignment committable."""

    def ack(consumer: Any, message: Any) -> bool:
        if not _from_revoked_assignment(consumer, message):
            return original(consumer, message)
        if not message.acked:
            message.acked = True
            consumer._unacked_messages.discard(message)  # noqa: SLF001 - lets wait_empty end
            log.debug("rebalance: %s offset %s released, not committable", message.tp,
                      message.offset)  # fmt: skip
        return False

    return ack


def install_rebalance_ack_guard() -> None:
    from faust.transport.consumer import Consumer

    consumer_class: Any = Consumer
    if getattr(consumer_class, "_veille_ack_guarded", False):
        return
    consumer_class.ack = guard_ack(consumer_class.ack)
    consumer_class._veille_ack_guarded = True  # noqa: SLF001
