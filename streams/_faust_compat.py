"""Workarounds for faust-streaming 0.15 committing offsets of records it never processed
around a rebalance or a restart: acks of a revoked assignment (below), and records fetched
around a seek (``install_seek_guard``, further down).

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

Both installs first check the installed Faust against the pin and that every member they
replace exists (``veille.library_pins``): a renamed member would make a patch silently inert.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from veille.library_pins import FAUST_PIN, check_patchable

from ._offset_gaps import GAP_RETRY_S, MissingOffsets

__all__ = [
    "ACK_GUARD_MEMBERS",
    "SEEK_GUARD_CALLS",
    "SEEK_GUARD_MEMBERS",
    "assigned",
    "guard_ack",
    "hold_back",
    "install_rebalance_ack_guard",
    "install_seek_guard",
    "read_again",
    "resumed",
    "seeking",
    "sought",
]

log = logging.getLogger(__name__)

Ack = Callable[[Any, Any], bool]

# The members of faust's ``Consumer`` each guard replaces (checked before patching).
ACK_GUARD_MEMBERS: Final = ("ack",)
SEEK_GUARD_MEMBERS: Final = (
    "getmany", "on_partitions_assigned", "perform_seek", "seek", "resume_flow", "_add_gap",
)  # fmt: skip
# Members the seek guard calls without replacing them.
SEEK_GUARD_CALLS: Final = ("earliest_offsets", "assignment")
LOG_START_TIMEOUT_S: Final = 5.0


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

    check_patchable(FAUST_PIN, Consumer, ACK_GUARD_MEMBERS)
    consumer_class: Any = Consumer
    if getattr(consumer_class, "_veille_ack_guarded", False):
        return
    consumer_class.ack = guard_ack(consumer_class.ack)
    consumer_class._veille_ack_guarded = True  # noqa: SLF001


# -- records fetched around a seek ---------------------------------------------------------
# Symptom (fault suite, ``kill-detector``: 4 runs of 8 missed 6 to 38 alerts): a detector
# restarted after kill -9 seeks its stream partitions to the committed offsets when its table
# recovery ends (``Recovery._resume_streams``: ``perform_seek``, then flow resumes), and the
# first record its fetch loop then hands over is dozens of offsets past the committed one
# (logged: committed 517, next record 554), fetched before the seek. Faust's fetch loop
# (``Consumer._drain_messages``) takes the jump for a "gap" (compaction, transaction markers)
# and counts the skipped offsets as acked, so the commit passes records nobody processed.
# In the other failed runs records delivered between the seek and the flow's resumption
# were skipped by the stream (flow inactive) while moving Faust's read offset past them;
# the refetched copies are then dropped by the read-offset filter, and the partition's
# commit stays behind them for good. Upstream: faust-streaming #527 and #315 (offsets
# skipped after a rebalance, open).
#
# A third way in (integration suite, ``test_worker_restart``: failed in 2 of 4 CI runs and
# 2 of 4 runs of the integration suite on 2026-12-04): when a restarted detector's table
# recovery ends, Faust resumes the stream partitions *before* seeking them to the committed
# offsets, with flow active (``Recovery.on_recovery_completed``: ``resume_partitions``,
# ``perform_seek``, then ``flow_control.resume()``, which empties the streams' queues). A
# fetch answered around the seek (logged: readings-0 offset 14, committed 14, handed over
# 2 ms before the seek returned) gave the stream a record that the resumption then threw
# away, while the consumer's position had moved past it; nothing read it again until a
# later record of that partition arrived. The last readings of a quiet partition (here: the
# ones that should have resolved an alert) waited for the next message, for ever in the test.
#
# Fix, for the topics Faust acks (our stream topics: plain logs, never compacted or
# transactional, so offsets are contiguous): a partition's records are held back while flow
# is suspended and from its assignment until flow resumes after its seek to the committed
# offset; whatever was held back is read again from that offset (or, with no commit, from
# the first record held) by a seek when flow resumes; every seek sets the offset it expects
# before it is made, and records are held back until the one at that offset arrives (one
# past it means it went by unseen: seek back to it); and a gap is never counted as acked
# (should one still appear, the commit waits rather than skipping, and the error says so).
#
# A fourth way in, in steady state (the sink met it in a full fault run on 2026-12-05,
# `rebalance` #5; see streams/_offset_gaps.py): the embedded Tansu raises a partition's
# high-water mark before it writes the batch, and a fetch returns whatever batches it finds
# at or above the requested offset, so with two producers on a partition a fetch can skip an
# offset that appears a moment later. Each partition also expects the offset after the last
# record it handed over (0 with no commit); a record past it is held back, and the partition
# is sought back to the missing offset after GAP_RETRY_S (the broker's write is under way).
# From the third try (``MissingOffsets``, shared with the sink), an offset below the log's
# start is gone (retention): the partition reads on from the log's start, with an error; and
# after GIVE_UP_S an offset that never came is given up, with an error. Either way the
# offsets passed count as processed, so that the commit moves on.


def _resync(consumer: Any) -> dict[Any, int]:
    """Per partition, the offset of the record it must hand over next (after a seek)."""
    found: dict[Any, int] | None = getattr(consumer, "_veille_resync", None)
    if found is None:
        found = consumer._veille_resync = {}  # noqa: SLF001 - per consumer, not global
    return found


def _reseek(consumer: Any) -> dict[Any, int]:
    """Per partition holding records back, the offset to read them again from."""
    found: dict[Any, int] | None = getattr(consumer, "_veille_reseek", None)
    if found is None:
        found = consumer._veille_reseek = {}  # noqa: SLF001
    return found


def _following(consumer: Any) -> dict[Any, int]:
    """Per partition, the offset after the last record handed over in steady state."""
    found: dict[Any, int] | None = getattr(consumer, "_veille_following", None)
    if found is None:
        found = consumer._veille_following = {}  # noqa: SLF001
    return found


def _missing(consumer: Any) -> MissingOffsets:
    """The missing offsets being read again, per partition."""
    found: MissingOffsets | None = getattr(consumer, "_veille_missing", None)
    if found is None:
        found = consumer._veille_missing = MissingOffsets()  # noqa: SLF001
    return found


def _unsought(consumer: Any) -> set[Any]:
    """Partitions assigned and not yet sought to their committed offsets."""
    found: set[Any] | None = getattr(consumer, "_veille_unsought", None)
    if found is None:
        found = consumer._veille_unsought = set()  # noqa: SLF001
    return found


def _unresumed(consumer: Any) -> set[Any]:
    """Partitions sought to their committed offsets, flow not yet resumed."""
    found: set[Any] | None = getattr(consumer, "_veille_unresumed", None)
    if found is None:
        found = consumer._veille_unresumed = set()  # noqa: SLF001
    return found


def assigned(consumer: Any, partitions: set[Any]) -> None:
    """A new assignment: each partition waits for its seek to the committed offset and for
    flow to resume; what the previous assignment expected or held back no longer applies
    (the consumer's positions start again from the commits)."""
    unsought = _unsought(consumer)
    unsought.clear()
    unsought.update(partitions)
    _unresumed(consumer).clear()
    _resync(consumer).clear()
    _reseek(consumer).clear()
    _following(consumer).clear()
    _missing(consumer).clear()


def hold_back(consumer: Any, tp: Any, offset: int, *, flowing: bool) -> tuple[bool, int | None]:
    """Whether the fetch loop must not hand over the record at ``offset`` of ``tp``, and the
    offset to seek ``tp`` back to, if the record the loop waits for went by unseen.

    Held back, and read again when flow resumes: records fetched while flow is suspended,
    between an assignment and the resumption of flow after its seek, or while such a seek
    back is pending (never from before the offset the partition was sought to).

    Sought back: a partition whose record went by before its seek took effect, and one
    whose fetch skipped the offset after the last record handed over."""
    reseek = _reseek(consumer)
    resync = _resync(consumer)
    following = _following(consumer)
    waiting = tp in reseek or tp in _unsought(consumer) or tp in _unresumed(consumer)
    if not flowing or waiting:
        floor = resync.get(tp)
        first = offset if floor is None else max(offset, floor)
        reseek[tp] = min(reseek.get(tp, first), first)
        return True, None
    expected = resync.get(tp)
    if expected is None:
        after_last = following.get(tp)
        if after_last is not None and offset > after_last:
            resync[tp] = after_last
            return True, after_last
        # A replay below it (Faust's fetch loop drops those) does not move it back.
        following[tp] = offset + 1 if after_last is None else max(after_last, offset + 1)
        return False, None
    if offset == expected:
        del resync[tp]
        following[tp] = offset + 1
        _missing(consumer).settle((tp,))
        return False, None
    if offset < expected:  # fetched before the seek, from further back
        return True, None
    # Past the record we wait for: it was fetched (and held back) before the seek's position
    # was known. Read from it again; until then, hold back what comes.
    log.debug("%s: waiting for record %d, got %d: seeking back", tp, expected, offset)
    return True, expected


def sought(consumer: Any, committed: dict[Any, int | None]) -> None:
    """After the seek to the ``committed`` offsets: expect each partition's next record at
    its offset, and read again from it whatever was held back meanwhile (a fetch answered
    around the seek may have moved the consumer past it).

    ``None``: a partition with no committed offset, which that seek leaves where the
    broker's "earliest" put it; its next record must be offset 0 all the same (Tansu's
    "earliest" can be a later batch written first, streams/_offset_gaps.py)."""
    resync, reseek = _resync(consumer), _reseek(consumer)
    unsought, unresumed = _unsought(consumer), _unresumed(consumer)
    following = _following(consumer)
    for tp, offset in committed.items():
        following.pop(tp, None)
        if tp in unsought:
            unsought.discard(tp)
            unresumed.add(tp)
        offset = 0 if offset is None or offset < 0 else offset
        resync[tp] = offset
        if tp in reseek:
            reseek[tp] = offset


def seeking(consumer: Any, tp: Any, offset: int) -> None:
    """Before an explicit seek of ``tp`` to ``offset``: expect that record next (set first,
    so that a record fetched while the seek is under way is judged against it)."""
    _reseek(consumer).pop(tp, None)
    _following(consumer).pop(tp, None)
    _resync(consumer)[tp] = max(offset, 0)


def resumed(consumer: Any) -> dict[Any, int]:
    """Flow resumes: partitions sought since their assignment hand records over again, but
    not those Faust keeps paused (the stream partitions while it reads the changelogs: they
    are resumed, then sought, when that ends); the partitions to seek back, with the offset
    to read them again from."""
    paused: set[Any] = getattr(consumer, "_paused_partitions", set())
    unresumed = _unresumed(consumer)
    unresumed.intersection_update(paused)
    waiting = _unsought(consumer) | unresumed
    return {tp: offset for tp, offset in _reseek(consumer).items() if tp not in waiting}


def install_seek_guard() -> None:
    from faust.transport.consumer import Consumer

    check_patchable(FAUST_PIN, Consumer, (*SEEK_GUARD_MEMBERS, *SEEK_GUARD_CALLS))
    consumer_class: Any = Consumer
    if getattr(consumer_class, "_veille_seek_guarded", False):
        return
    original_getmany = consumer_class.getmany
    original_perform_seek = consumer_class.perform_seek
    original_seek = consumer_class.seek
    original_resume_flow = consumer_class.resume_flow
    original_on_partitions_assigned = consumer_class.on_partitions_assigned
    original_add_gap = consumer_class._add_gap  # noqa: SLF001

    async def getmany(self: Any, timeout: float) -> Any:
        acking = self.app.topics.acks_enabled_for
        seeking: dict[Any, tuple[int, int]] = {}  # offset to read again, first one held
        async for tp, message in original_getmany(self, timeout):
            if not acking(message.topic):
                yield tp, message
                continue
            hold, seek_to = hold_back(
                self, tp, message.offset, flowing=self.app.flow_control.is_active()
            )
            if seek_to is not None:
                seeking.setdefault(tp, (seek_to, message.offset))
            if not hold:
                yield tp, message
        if not seeking:
            return
        await asyncio.sleep(GAP_RETRY_S)  # after the batch: a seek empties aiokafka's buffer
        for tp, (offset, got) in seeking.items():
            if _resync(self).get(tp) == offset and tp in self.assignment():
                await read_again(self, tp, offset, got, original_add_gap)

    async def on_partitions_assigned(
        self: Any, partitions: set[Any], generation_id: int = 0
    ) -> None:
        assigned(self, set(partitions))
        await original_on_partitions_assigned(self, partitions, generation_id)

    async def perform_seek(self: Any) -> None:
        await original_perform_seek(self)
        sought(self, {tp: self._committed_offset.get(tp) for tp in self.assignment()})

    async def seek(self: Any, partition: Any, offset: int) -> None:
        seeking(self, partition, offset or 0)
        await original_seek(self, partition, offset)

    def resume_flow(self: Any) -> None:
        original_resume_flow(self)
        pending = resumed(self)
        if pending:
            task = asyncio.ensure_future(_seek_back(self, pending))
            self._veille_reseek_task = task  # noqa: SLF001 - keep a reference until done

    async def _add_gap(self: Any, tp: Any, offset_from: int, offset_to: int) -> None:
        log.error(
            "%s: records %d to %d were skipped by the fetch; not counted as processed, so "
            "the commit waits before them (restart the worker to read them again)",
            tp, offset_from, offset_to,
        )  # fmt: skip

    consumer_class.getmany = getmany
    consumer_class.on_partitions_assigned = on_partitions_assigned
    consumer_class.perform_seek = perform_seek
    consumer_class.seek = seek
    consumer_class.resume_flow = resume_flow
    consumer_class._add_gap = _add_gap  # noqa: SLF001
    consumer_class._veille_seek_guarded = True  # noqa: SLF001


AddGap = Callable[[Any, Any, int, int], Awaitable[None]]


async def read_again(
    consumer: Any, tp: Any, offset: int, got: int, count_as_processed: AddGap
) -> None:
    """Seek ``tp`` back to ``offset``, which went by unseen (the next record was ``got``):
    from the log's start if retention removed it, from ``got`` if it never came; the
    offsets passed then count as processed (Faust's own ``_add_gap``)."""
    attempt = _missing(consumer).attempt(tp, offset)
    resume_at = offset
    if attempt.confirmed:
        start = await _log_start(consumer, tp)
        if start is not None and start > offset:
            log.error("%s: records %d to %d were removed by retention before this worker "
                      "read them; reading on from %d", tp, offset, start - 1, start)  # fmt: skip
            resume_at = start
        elif attempt.overdue:
            log.error("%s: records %d to %d never appeared in %.0f s of reading them again: "
                      "the broker lost them or never wrote them; reading on from %d",
                      tp, offset, got - 1, attempt.waited_s, got)  # fmt: skip
            resume_at = got
    elif attempt.first:
        log.warning("%s: records %d to %d went by unseen (the broker had not written them "
                    "yet, or a fetch answered around a seek); reading again from %d",
                    tp, offset, got - 1, offset)  # fmt: skip
    if _resync(consumer).get(tp) != offset or tp not in consumer.assignment():
        return  # revoked, or sought elsewhere, meanwhile
    if resume_at != offset:
        _missing(consumer).settle((tp,))
        await count_as_processed(consumer, tp, offset, resume_at - 1)
    await consumer.seek(tp, resume_at)


async def _log_start(consumer: Any, tp: Any) -> int | None:
    """The first offset still in ``tp``'s log; None when the broker cannot say (the seek
    back then goes ahead: aiokafka resets an offset out of range itself)."""
    try:
        async with asyncio.timeout(LOG_START_TIMEOUT_S):
            starts: Mapping[Any, int] = await consumer.earliest_offsets(tp)
    except Exception as exc:  # noqa: BLE001 - any failure: seek back as if it were there
        log.warning("%s: the log's start could not be read (%s); reading again anyway", tp, exc)
        return None
    return starts.get(tp)


async def _seek_back(consumer: Any, pending: dict[Any, int]) -> None:
    """Seek each partition of ``pending`` back to the first record still held back from it
    (a seek made meanwhile has already placed it, and removed it from the held-back; a
    partition assigned meanwhile waits for its own seek to the committed offset)."""
    assignment = consumer.assignment()
    for tp in pending:
        offset = _reseek(consumer).get(tp)
        waiting = tp in _unsought(consumer) or tp in _unresumed(consumer)
        if offset is not None and tp in assignment and not waiting:
            log.info("%s: records from %d held back while flow was suspended or before its "
                     "seek; reading them again", tp, offset)  # fmt: skip
            await consumer.seek(tp, offset)
