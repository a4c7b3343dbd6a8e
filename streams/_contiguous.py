"""A plain aiokafka consumer group that never takes a record past one the broker skipped.

The sink and the clinic's webhook recorder commit what they fetched once it is durable, so a
record the broker skipped and they stepped over is lost for good: readings never stored, an
alert never sent to a webhook. :class:`ContiguousFetches` wraps one such consumer with the
guard of ``_offset_gaps.py``: each fetched batch is cut at a partition's first skipped
offset, the partition is sought back to it, and a later poll reads it again.

Only for plain logs: a compacted topic (a Faust changelog on Apache Kafka) has holes by
design, which this would wait on for ``GIVE_UP_S`` each.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError

from ._offset_gaps import GAP_RETRY_S, Attempt, Gap, MissingOffsets, OffsetGuard

__all__ = ["ContiguousFetches", "Fetched"]

log = logging.getLogger(__name__)

Fetched = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


class _Forget(ConsumerRebalanceListener):  # type: ignore[misc]
    """The guard forgets a partition's expected and missing offsets when the partition moves."""

    def __init__(self, guard: OffsetGuard, missing: MissingOffsets) -> None:
        self._guard = guard
        self._missing = missing

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self._guard.forget(revoked)
        self._missing.settle(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self._guard.forget(assigned)
        self._missing.settle(assigned)


class ContiguousFetches:
    """The contiguous part of each fetch of ``consumer``; subscribe with :attr:`listener`.

    ``lost_as`` finishes the error logged when offsets are gone from the broker ("they were
    never stored"); ``on_gap`` is called once per skipped offset (a counter)."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        *,
        lost_as: str,
        on_gap: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._consumer = consumer
        self._lost_as = lost_as
        self._on_gap = on_gap
        self._guard = OffsetGuard()
        self._missing = MissingOffsets(clock)
        self.listener: ConsumerRebalanceListener = _Forget(self._guard, self._missing)

    async def take(self, fetched: Fetched) -> Fetched:
        """``fetched`` up to each partition's first skipped offset; the partitions with a gap
        are sought back to it, and this waits :data:`GAP_RETRY_S` before returning."""
        for tp in list(fetched):
            if self._guard.knows(tp):
                continue
            try:
                committed = await self._consumer.committed(tp)
            except KafkaError as exc:  # no coordinator now: this partition waits for a poll
                log.warning("no committed offset for %s (%s); reading it again", tp, exc)
                self._seek(tp, fetched.pop(tp)[0].offset)
                continue
            self._guard.expect(tp, 0 if committed is None else committed)
        batch, gaps = self._guard.cut(fetched)
        self._missing.settle(batch)
        for gap in gaps:
            attempt = self._missing.attempt(gap.partition, gap.expected)
            if attempt.first:
                self._on_gap()
            await self._read_again(attempt, gap)
        if gaps:
            await asyncio.sleep(GAP_RETRY_S)
        return batch

    async def _read_again(self, attempt: Attempt, gap: Gap[TopicPartition]) -> None:
        """Seek back to the offset ``gap`` skipped; past it if it is gone or never came."""
        tp, expected = gap.partition, gap.expected
        resume_at = expected
        if attempt.confirmed:
            start = await self._log_start(tp)
            if start is not None and start > expected:
                log.error(
                    "offsets %d-%d of %s are gone from the broker (its log starts at %d): %s",
                    expected, start - 1, tp, start, self._lost_as,
                )  # fmt: skip
                resume_at = start
            elif attempt.overdue:
                log.error(
                    "offsets %d-%d of %s never appeared in %.0f s of reading them again: the "
                    "broker lost them or never wrote them; reading on from %d",
                    expected, gap.got - 1, tp, attempt.waited_s, gap.got,
                )  # fmt: skip
                resume_at = gap.got
        elif attempt.first:
            log.warning(
                "the broker skipped offsets %d-%d of %s; reading again from %d",
                expected, gap.got - 1, tp, expected,
            )  # fmt: skip
        if resume_at != expected:
            self._guard.expect(tp, resume_at)
        self._seek(tp, resume_at)

    async def _log_start(self, tp: TopicPartition) -> int | None:
        try:
            starts: dict[TopicPartition, int] = await self._consumer.beginning_offsets([tp])
        except KafkaError as exc:
            log.warning("the start of %s's log could not be read (%s); reading again", tp, exc)
            return None
        return starts.get(tp)

    def _seek(self, tp: TopicPartition, offset: int) -> None:
        try:
            self._consumer.seek(tp, offset)
        except IllegalStateError:  # revoked meanwhile: its next owner reads from the commit
            log.warning("%s was revoked before it could be read again", tp)
