"""The detector writes each changed patient state to its table once per interval, and a
group's events wait for that write (streams/_state_writes.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from streams._state_writes import DeferredStates


class RecordingTable(dict[bytes, bytes]):
    """A Faust table as the detector uses it: missing keys read as empty bytes; every
    write is a changelog record."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[bytes, bytes]] = []

    def __missing__(self, key: bytes) -> bytes:
        return b""

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.writes.append((key, value))
        super().__setitem__(key, value)


class FailingTable(RecordingTable):
    def __setitem__(self, key: bytes, value: bytes) -> None:
        raise RuntimeError("the changelog producer is gone")


async def test_states_changed_within_an_interval_are_written_once_each_with_the_last() -> None:
    table = RecordingTable()
    states = DeferredStates(table, interval_s=1.0)
    states.put(b"p1", b"1")
    first_group = states.flushed()
    states.put(b"p1", b"2")
    states.put(b"p2", b"a")
    assert states.flushed() is first_group  # one flush covers every group since the last
    assert table.writes == [] and states[b"p1"] == b"2"  # readers see the newest
    assert first_group is not None and not first_group.done()
    assert states.flush() == 2
    assert table.writes == [(b"p1", b"2"), (b"p2", b"a")]
    assert first_group.done() and first_group.exception() is None
    assert states.flushed() is None  # nothing waits
    assert states.flush() == 0 and len(table.writes) == 2


async def test_a_missing_patient_reads_as_the_table_default() -> None:
    states = DeferredStates(RecordingTable(), interval_s=1.0)
    assert states[b"nobody"] == b""


async def test_without_an_interval_every_put_is_a_table_write() -> None:
    table = RecordingTable()
    states = DeferredStates(table, interval_s=0)
    states.put(b"p1", b"1")
    states.put(b"p1", b"2")
    assert table.writes == [(b"p1", b"1"), (b"p1", b"2")]
    assert states.flushed() is None
    await asyncio.wait_for(states.flush_every_interval(), 1.0)  # returns: nothing to do


async def test_write_now_replaces_the_pending_state_it_was_derived_from() -> None:
    table = RecordingTable()
    states = DeferredStates(table, interval_s=1.0)
    states.put(b"p1", b"pending")
    waiting = states.flushed()
    states.write_now(b"p1", b"acknowledged")  # a clinician's ack, read over "pending"
    assert table.writes == [(b"p1", b"acknowledged")]
    states.flush()
    assert table.writes == [(b"p1", b"acknowledged")]  # the older state is not written over it
    assert waiting is not None and waiting.done()


async def test_items_and_len_see_the_newest_state_of_every_patient() -> None:
    table = RecordingTable()
    table[b"p1"] = b"old"
    table[b"p2"] = b"kept"
    states = DeferredStates(table, interval_s=1.0)
    states.put(b"p1", b"new")
    states.put(b"p3", b"first")
    snapshot: Iterator[tuple[bytes, bytes]] = states.items()
    states.put(b"p4", b"later")  # not in a snapshot taken before
    assert dict(snapshot) == {b"p1": b"new", b"p2": b"kept", b"p3": b"first"}
    assert len(states) == 4


async def test_the_flushing_task_writes_at_every_interval() -> None:
    table = RecordingTable()
    states = DeferredStates(table, interval_s=0.01)
    flushing = asyncio.ensure_future(states.flush_every_interval())
    try:
        states.put(b"p1", b"1")
        waiting = states.flushed()
        assert waiting is not None
        await asyncio.wait_for(waiting, 1.0)
        assert table.writes == [(b"p1", b"1")]
    finally:
        flushing.cancel()


async def test_a_failed_write_fails_the_groups_waiting_for_it() -> None:
    states = DeferredStates(FailingTable(), interval_s=1.0)
    states.put(b"p1", b"1")
    waiting = states.flushed()
    with pytest.raises(RuntimeError, match="producer is gone"):
        states.flush()
    assert waiting is not None and isinstance(waiting.exception(), RuntimeError)


def test_a_negative_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        DeferredStates(RecordingTable(), interval_s=-1.0)
