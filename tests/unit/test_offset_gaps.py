"""The sink and the webhook recorder cut a fetched batch at a skipped offset and read it
again (streams/_offset_gaps.py, streams/_contiguous.py)."""

from __future__ import annotations

from typing import NamedTuple

from aiokafka.errors import KafkaError

from streams._offset_gaps import CONFIRM_TRIES, GIVE_UP_S, Gap, MissingOffsets, OffsetGuard
from streams.consumers import ContiguousFetches


class Record(NamedTuple):
    offset: int


def records(*offsets: int) -> list[Record]:
    return [Record(o) for o in offsets]


def test_contiguous_records_pass_whole_and_set_the_next_expected_offset() -> None:
    guard = OffsetGuard()
    guard.expect("p0", 10)
    kept, gaps = guard.cut({"p0": records(10, 11, 12)})
    assert kept == {"p0": records(10, 11, 12)} and gaps == []
    kept, gaps = guard.cut({"p0": records(13)})
    assert kept == {"p0": records(13)} and gaps == []


def test_a_batch_is_cut_at_the_first_skipped_offset() -> None:
    """Tansu handed the sink 619 onwards to a fetch from 618 (fault run of 2026-12-05)."""
    guard = OffsetGuard()
    guard.expect("p1", 616)
    kept, gaps = guard.cut({"p1": records(616, 617, 619, 620), "p2": records(5, 6)})
    assert kept == {"p1": records(616, 617), "p2": records(5, 6)}
    assert gaps == [Gap("p1", 618, 619)]
    # Read again from 618, the records come whole.
    kept, gaps = guard.cut({"p1": records(618, 619, 620)})
    assert kept == {"p1": records(618, 619, 620)} and gaps == []


def test_a_batch_starting_past_the_committed_offset_is_a_gap() -> None:
    guard = OffsetGuard()
    guard.expect("p0", 100)
    kept, gaps = guard.cut({"p0": records(101, 102)})
    assert kept == {} and gaps == [Gap("p0", 100, 101)]


def test_a_replay_below_the_expected_offset_is_taken() -> None:
    """A commit refused after a rebalance has the batch read again: the keys absorb it."""
    guard = OffsetGuard()
    guard.expect("p0", 50)
    kept, gaps = guard.cut({"p0": records(40, 41)})
    assert kept == {"p0": records(40, 41)} and gaps == []
    _, gaps = guard.cut({"p0": records(43)})
    assert gaps == [Gap("p0", 42, 43)]


def test_without_an_expected_offset_the_first_record_sets_the_start() -> None:
    guard = OffsetGuard()
    guard.expect("p0", None)
    kept, gaps = guard.cut({"p0": records(7, 8)})
    assert kept == {"p0": records(7, 8)} and gaps == []
    assert guard.knows("p0") and not guard.knows("p9")


def test_partitions_that_move_are_forgotten() -> None:
    guard = OffsetGuard()
    guard.expect("p0", 1)
    guard.expect("p1", 1)
    guard.forget(["p0", "p7"])
    assert not guard.knows("p0") and guard.knows("p1")


class FakeConsumer:
    """What :class:`ContiguousFetches` asks of aiokafka's consumer: commits, log starts, seeks."""

    def __init__(self, committed: dict[str, int | None], starts: dict[str, int]) -> None:
        self.committed_offsets = committed
        self.starts = starts
        self.sought: list[tuple[str, int]] = []
        self.starts_asked = 0
        self.commits_asked = 0

    async def committed(self, tp: str) -> int | None:
        self.commits_asked += 1
        if tp not in self.committed_offsets:
            raise KafkaError("no coordinator")
        return self.committed_offsets[tp]

    async def beginning_offsets(self, tps: list[str]) -> dict[str, int]:
        self.starts_asked += 1
        return {tp: self.starts.get(tp, 0) for tp in tps}

    def seek(self, tp: str, offset: int) -> None:
        self.sought.append((tp, offset))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Guarded:
    """A :class:`ContiguousFetches` over a fake consumer, counting the gaps it reports."""

    def __init__(self, consumer: FakeConsumer, clock: Clock | None = None) -> None:
        self.consumer = consumer
        self.gaps = 0
        self.fetches = ContiguousFetches(
            consumer,  # type: ignore[arg-type]
            lost_as="they were never stored",
            on_gap=self.count,
            clock=clock or Clock(),
        )

    def count(self) -> None:
        self.gaps += 1

    async def take(self, fetched: dict[str, list[Record]]) -> dict[str, list[Record]]:
        return await self.fetches.take(fetched)  # type: ignore[arg-type, return-value]


async def test_the_sink_stores_up_to_a_skipped_offset_and_reads_it_again() -> None:
    guarded = Guarded(FakeConsumer({"p1": 616}, {}))
    batch = await guarded.take({"p1": records(616, 617, 619)})
    assert batch == {"p1": records(616, 617)} and guarded.consumer.sought == [("p1", 618)]
    assert guarded.gaps == 1
    assert guarded.consumer.starts_asked == 0  # Tansu's window: no need to ask the log start


async def test_a_partition_without_an_answer_about_its_commit_waits_for_the_next_poll() -> None:
    guarded = Guarded(FakeConsumer({}, {}))
    assert await guarded.take({"p0": records(5, 6)}) == {}
    assert guarded.consumer.sought == [("p0", 5)]
    guarded.consumer.committed_offsets["p0"] = 5  # the coordinator is back: asked again
    assert await guarded.take({"p0": records(5, 6)}) == {"p0": records(5, 6)}
    assert guarded.consumer.commits_asked == 2


async def test_without_a_commit_the_partition_must_start_at_offset_0() -> None:
    """Tansu's "earliest" is its oldest batch by time: the window can make it offset 1."""
    guarded = Guarded(FakeConsumer({"p0": None}, {"p0": 1}))
    assert await guarded.take({"p0": records(1, 2)}) == {}
    assert guarded.consumer.sought == [("p0", 0)]
    assert await guarded.take({"p0": records(0, 1, 2)}) == {"p0": records(0, 1, 2)}


async def test_a_skip_is_read_again_even_when_the_broker_names_a_later_log_start() -> None:
    """Until the third try: Tansu's window passes in milliseconds, and its "earliest" can be
    the batch written first rather than the lowest offset."""
    guarded = Guarded(FakeConsumer({"p0": 0}, {"p0": 1}))
    for _ in range(CONFIRM_TRIES - 1):
        assert await guarded.take({"p0": records(1)}) == {}
    assert guarded.consumer.sought == [("p0", 0)] * (CONFIRM_TRIES - 1)
    assert guarded.consumer.starts_asked == 0
    assert await guarded.take({"p0": records(0, 1)}) == {"p0": records(0, 1)}


async def test_offsets_below_the_log_start_are_taken_as_gone_at_the_third_try() -> None:
    """The commit is older than what retention kept: nothing can bring those back."""
    guarded = Guarded(FakeConsumer({"p0": 100}, {"p0": 150}))
    for _ in range(CONFIRM_TRIES):
        assert await guarded.take({"p0": records(150, 151)}) == {}
    assert guarded.consumer.sought == [("p0", 100)] * (CONFIRM_TRIES - 1) + [("p0", 150)]
    assert guarded.gaps == 1  # counted once, at the first try
    assert await guarded.take({"p0": records(150, 151)}) == {"p0": records(150, 151)}


async def test_an_offset_that_never_comes_is_given_up_after_a_while() -> None:
    """A produce that failed after Tansu raised its high-water mark leaves a hole for good."""
    clock = Clock()
    guarded = Guarded(FakeConsumer({"p0": 7}, {}), clock)
    for _ in range(CONFIRM_TRIES + 2):
        await guarded.take({"p0": records(9, 10)})
        clock.now += 1
    assert set(guarded.consumer.sought) == {("p0", 7)}
    clock.now += GIVE_UP_S
    await guarded.take({"p0": records(9, 10)})
    assert guarded.consumer.sought[-1] == ("p0", 9)
    assert await guarded.take({"p0": records(9, 10)}) == {"p0": records(9, 10)}


async def test_a_partition_that_moves_is_asked_its_commit_again() -> None:
    """Another consumer may have moved the partition's commit meanwhile."""
    guarded = Guarded(FakeConsumer({"p0": 3}, {}))
    assert await guarded.take({"p0": records(3)}) == {"p0": records(3)}
    await guarded.fetches.listener.on_partitions_revoked(["p0"])
    guarded.consumer.committed_offsets["p0"] = 10
    assert await guarded.take({"p0": records(11)}) == {}  # expected 10, not 4
    assert guarded.consumer.sought == [("p0", 10)]


def test_tries_count_per_missing_offset_and_start_again_when_it_moves() -> None:
    clock = Clock()
    missing = MissingOffsets(clock)
    assert missing.attempt("p0", 5).first
    clock.now += 2
    again = missing.attempt("p0", 5)
    assert (again.tries, again.waited_s, again.first) == (2, 2.0, False)
    assert missing.attempt("p0", 9).first  # a new hole
    missing.settle(["p0"])
    assert missing.attempt("p0", 9).first
