"""The sink cuts a fetched batch at a skipped offset and reads it again
(streams/_offset_gaps.py)."""

from __future__ import annotations

from typing import NamedTuple

from streams._offset_gaps import Gap, OffsetGuard


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


def test_without_a_commit_the_first_record_sets_the_start() -> None:
    guard = OffsetGuard()
    guard.expect("p0", None)
    kept, gaps = guard.cut({"p0": records(7, 8)})
    assert kept == {"p0": records(7, 8)} and gaps == []
    assert guard.knows("p0") and not guard.knows("p9")


def test_partitions_no_longer_assigned_are_forgotten() -> None:
    guard = OffsetGuard()
    guard.expect("p0", 1)
    guard.expect("p1", 1)
    guard.keep_only({"p1"})
    assert not guard.knows("p0") and guard.knows("p1")
