"""The detector writes each changed patient state to its table once per interval, and a
group's events wait for that write (streams/_state_writes.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import orjson
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


def setting(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change that sets ``state[name]``, as the detector's rules change a state in place."""

    def change(state: dict[str, Any]) -> None:
        state[name] = value

    return change


def decoded(raw: bytes) -> dict[str, Any]:
    value: dict[str, Any] = orjson.loads(raw)
    return value


async def test_states_changed_within_an_interval_are_written_once_each_with_the_last() -> None:
    table = RecordingTable()
    states = DeferredStates(table, interval_s=1.0)
    states.update(b"p1", setting("a", 1))
    first_group = states.flushed()
    states.update(b"p1", setting("a", 2))
    states.update(b"p2", setting("b", 1))
    assert states.flushed() is first_group  # one flush covers every group since the last
    assert table.writes == [] and decoded(states[b"p1"]) == {"a": 2}  # readers see the newest
    assert first_group is not None and not first_group.done()
    assert states.flush() == 2
    assert [(key, decoded(raw)) for key, raw in table.writes] == [
        (b"p1", {"a": 2}),
        (b"p2", {"b": 1}),
    ]
    assert first_group.done() and first_group.exception() is None
    assert states.flushed() is None  # nothing waits
    assert states.flush() == 0 and len(table.writes) == 2


async def test_a_state_is_decoded_once_per_interval_and_changed_in_place() -> None:
    table = RecordingTable()
    table[b"p1"] = orjson.dumps({"n": 0})
    states = DeferredStates(table, interval_s=1.0)
    seen: list[dict[str, Any]] = []

    def count(state: dict[str, Any]) -> int:
        seen.append(state)
        state["n"] += 1
        return int(state["n"])

    assert [states.update(b"p1", count) for _ in range(3)] == [1, 2, 3]
    assert seen[0] is seen[1] is seen[2]  # the same dict, not three decodings
    states.flush()
    assert decoded(table[b"p1"]) == {"n": 3}
    states.update(b"p1", count)
    assert seen[3] is not seen[0]  # a new interval starts from the table


async def test_an_unchanged_state_adds_nothing_to_the_changelog() -> None:
    table = RecordingTable()
    table[b"p1"] = orjson.dumps({"a": 1})
    writes_before = len(table.writes)
    states = DeferredStates(table, interval_s=1.0)
    states.update(b"p1", setting("a", 1))  # the same value
    assert states.flush() == 0
    assert len(table.writes) == writes_before


async def test_a_missing_patient_reads_as_the_table_default() -> None:
    states = DeferredStates(RecordingTable(), interval_s=1.0)
    assert states[b"nobody"] == b""
    assert states.update(b"nobody", dict) == {}  # its state starts empty


async def test_without_an_interval_every_change_is_a_table_write() -> None:
    table = RecordingTable()
    states = DeferredStates(table, interval_s=0)
    states.update(b"p1", setting("a", 1))
    states.update(b"p1", setting("a", 1))  # unchanged: not written
    states.update(b"p1", setting("a", 2))
    assert [decoded(raw) for _, raw in table.writes] == [{"a": 1}, {"a": 2}]
    assert states.flushed() is None
    await asyncio.wait_for(states.flush_every_interval(), 1.0)  # returns: nothing to do


async def test_write_now_replaces_the_pending_state_it_was_derived_from() -> None:
    table = RecordingTable()
    states = DeferredStates(table, interval_s=1.0)
    states.update(b"p1", setting("a", "pending"))
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
    states.write_now(b"p1", orjson.dumps({}))
    states.update(b"p1", setting("v", "new"))
    states.update(b"p3", setting("v", "first"))
    snapshot: Iterator[tuple[bytes, bytes]] = states.items()
    states.update(b"p4", setting("v", "later"))  # not in a snapshot taken before
    assert dict(snapshot) == {b"p1": b'{"v":"new"}', b"p2": b"kept", b"p3": b'{"v":"first"}'}
    assert len(states) == 4


async def test_the_flushing_task_writes_at_every_interval() -> None:
    table = RecordingTable()
    states = DeferredStates(table, interval_s=0.01)
    flushing = asyncio.ensure_future(states.flush_every_interval())
    try:
        states.update(b"p1", setting("a", 1))
        waiting = states.flushed()
        assert waiting is not None
        await asyncio.wait_for(waiting, 1.0)
        assert table.writes == [(b"p1", b'{"a":1}')]
    finally:
        flushing.cancel()


async def test_a_failed_write_fails_the_groups_waiting_for_it() -> None:
    states = DeferredStates(FailingTable(), interval_s=1.0)
    states.update(b"p1", setting("a", 1))
    waiting = states.flushed()
    with pytest.raises(RuntimeError, match="producer is gone"):
        states.flush()
    assert waiting is not None and isinstance(waiting.exception(), RuntimeError)


def half_done(state: dict[str, Any]) -> None:
    state["half"] = True
    raise ValueError("a rule failed half-way")


async def test_a_change_failing_on_a_fresh_state_keeps_the_tables() -> None:
    table = RecordingTable()
    table[b"p1"] = b'{"a":1}'
    states = DeferredStates(table, interval_s=1.0)
    with pytest.raises(ValueError, match="half-way"):
        states.update(b"p1", half_done)
    assert states.flushed() is None and states[b"p1"] == b'{"a":1}'


async def test_a_change_failing_on_a_kept_state_drops_the_interval_and_fails_its_groups() -> None:
    table = RecordingTable()
    states = DeferredStates(table, interval_s=1.0)
    states.update(b"p1", setting("a", 1))
    states.update(b"p2", setting("b", 1))
    waiting = states.flushed()
    with pytest.raises(ValueError, match="half-way"):
        states.update(b"p1", half_done)
    assert waiting is not None and waiting.done()
    error = waiting.exception()
    assert isinstance(error, RuntimeError) and isinstance(error.__cause__, ValueError)
    assert states.flush() == 0 and table.writes == []  # nothing half-changed is written


def test_a_negative_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        DeferredStates(RecordingTable(), interval_s=-1.0)
