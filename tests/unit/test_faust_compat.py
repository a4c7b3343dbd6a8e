"""A record of a revoked assignment is released but never made committable (Faust's
rebalance loss, see streams/_faust_compat.py); the patches land on the real Faust classes,
and refuse a Faust they were not written for."""

from __future__ import annotations

import asyncio
import importlib.metadata
import tomllib
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from intervaltree import IntervalTree

from streams._faust_compat import (
    ACK_GUARD_MEMBERS,
    SEEK_GUARD_MEMBERS,
    assigned,
    guard_ack,
    hold_back,
    install_rebalance_ack_guard,
    install_seek_guard,
    read_again,
    resumed,
    seeking,
    sought,
)
from streams._fetch_wait import FETCH_WAIT_MEMBERS, install_fetch_wait
from streams._offset_gaps import CONFIRM_TRIES, GIVE_UP_S, MissingOffsets
from streams._tansu_compat import END_OFFSET_MEMBERS, install_end_offset_workaround
from veille import library_pins
from veille.errors import IncompatibleLibraryError
from veille.library_pins import FAUST_PIN


class FlowControl:
    def __init__(self, active: bool) -> None:
        self.active = active

    def is_active(self) -> bool:
        return self.active


def _consumer(*, generation: int, flowing: bool) -> Any:
    app = SimpleNamespace(consumer_generation_id=generation, flow_control=FlowControl(flowing))
    return SimpleNamespace(app=app, _unacked_messages=set(), committable=[])


class Record:
    def __init__(self, offset: int, generation: int) -> None:
        self.tp = "raw/0"
        self.offset = offset
        self.generation_id = generation
        self.acked = False


def _message(offset: int, generation: int) -> Any:
    return Record(offset, generation)


def _original(consumer: Any, message: Any) -> bool:
    message.acked = True
    consumer.committable.append(message.offset)
    return True


def test_a_current_record_is_acked_as_faust_does() -> None:
    consumer = _consumer(generation=3, flowing=True)
    assert guard_ack(_original)(consumer, _message(10, generation=3)) is True
    assert consumer.committable == [10]


def test_a_record_of_an_earlier_generation_is_released_not_committable() -> None:
    consumer = _consumer(generation=4, flowing=True)
    message = _message(11, generation=3)
    consumer._unacked_messages = {message}

    assert guard_ack(_original)(consumer, message) is False
    assert consumer.committable == []
    assert message.acked and consumer._unacked_messages == set()


def test_an_ack_while_a_rebalance_suspends_flow_is_not_committable() -> None:
    consumer = _consumer(generation=3, flowing=False)
    assert guard_ack(_original)(consumer, _message(12, generation=3)) is False
    assert consumer.committable == []


# -- records fetched around a seek --------------------------------------------------------
class _Consumer:
    """What hold_back and sought keep per consumer: nothing but attributes."""


def _handed(consumer: object, tp: str, offsets: list[int], *, flowing: bool = True) -> list[int]:
    """The offsets the fetch loop hands over; seeks asked for are kept in ``consumer.asked``."""
    out = []
    for offset in offsets:
        hold, seek_to = hold_back(consumer, tp, offset, flowing=flowing)
        if seek_to is not None:
            consumer.asked = seek_to  # type: ignore[attr-defined]
        if not hold:
            out.append(offset)
    return out


def test_without_a_seek_every_record_is_handed_over() -> None:
    assert _handed(_Consumer(), "readings-0", [5, 6, 7]) == [5, 6, 7]


def test_records_fetched_before_a_seek_are_held_until_the_sought_offset() -> None:
    """The detector's restart: committed 518, the loop still had 554.. from before the seek."""
    consumer = _Consumer()
    sought(consumer, {"readings-0": 518})
    assert _handed(consumer, "readings-0", [517, 516]) == []  # older: dropped, no seek
    assert _handed(consumer, "readings-0", [518, 519, 520]) == [518, 519, 520]


def test_a_sought_record_that_went_by_unseen_is_read_again() -> None:
    consumer = _Consumer()
    sought(consumer, {"readings-1": 172})
    assert _handed(consumer, "readings-1", [173, 174]) == []
    assert consumer.asked == 172  # type: ignore[attr-defined]
    assert _handed(consumer, "readings-1", [172, 173]) == [172, 173]  # after the seek


def test_an_offset_the_fetch_skipped_in_steady_state_is_read_again() -> None:
    """Tansu's window (streams/_offset_gaps.py): a fetch from 7 answered 9 onwards."""
    consumer = _Consumer()
    assert _handed(consumer, "readings-1", [5, 6, 9, 10]) == [5, 6]
    assert consumer.asked == 7  # type: ignore[attr-defined]
    assert _handed(consumer, "readings-1", [11]) == []  # until the seek back is made
    seeking(consumer, "readings-1", 7)
    assert _handed(consumer, "readings-1", [7, 8, 9, 10, 11]) == [7, 8, 9, 10, 11]


def test_a_replay_in_steady_state_does_not_move_the_expected_offset_back() -> None:
    """Faust's fetch loop drops a record below its read offset; the next new one flows."""
    consumer = _Consumer()
    assert _handed(consumer, "readings-2", [5, 6, 7, 6, 8]) == [5, 6, 7, 6, 8]
    assert not hasattr(consumer, "asked")


def test_after_a_seek_to_no_committed_offset_the_first_record_sets_the_expectation() -> None:
    consumer = _Consumer()
    assert _handed(consumer, "readings-3", [3, 4]) == [3, 4]
    seeking(consumer, "readings-3", 0)  # to the start: nothing expected until a record
    assert _handed(consumer, "readings-3", [0, 1, 3]) == [0, 1]
    assert consumer.asked == 2  # type: ignore[attr-defined]


def test_a_new_assignment_forgets_the_offsets_handed_over_before() -> None:
    """Another worker may have moved the partition on: its commit, not our last record,
    says where it starts."""
    consumer = _Consumer()
    assert _handed(consumer, "readings-4", [5, 6]) == [5, 6]
    assigned(consumer, {"readings-4"})
    sought(consumer, {"readings-4": 40})
    assert resumed(consumer) == {}
    assert _handed(consumer, "readings-4", [40, 41]) == [40, 41]


def test_without_a_committed_offset_the_first_record_must_be_offset_0() -> None:
    """Tansu's "earliest" is its oldest batch by time, which its window can make offset 1."""
    consumer = _Consumer()
    assigned(consumer, {"readings-4"})
    sought(consumer, {"readings-4": None})
    assert resumed(consumer) == {}
    assert _handed(consumer, "readings-4", [1, 2]) == []
    assert consumer.asked == 0  # type: ignore[attr-defined]


def test_records_fetched_while_flow_is_suspended_are_read_again_from_the_committed_offset() -> None:
    consumer = _Consumer()
    assert _handed(consumer, "readings-2", [40, 41, 42], flowing=False) == []
    assert consumer._veille_reseek == {"readings-2": 40}  # type: ignore[attr-defined]
    sought(consumer, {"readings-2": 38})  # the seek to the committed offsets
    assert resumed(consumer) == {"readings-2": 38}  # flow resumes: seek back there
    assert _handed(consumer, "readings-2", [43]) == []  # until that seek is made
    seeking(consumer, "readings-2", 38)
    assert _handed(consumer, "readings-2", [38, 39, 40]) == [38, 39, 40]


def test_a_partition_without_a_committed_offset_is_not_held() -> None:
    consumer = _Consumer()
    sought(consumer, {"readings-3": None, "readings-4": 0})
    assert _handed(consumer, "readings-3", [0, 1]) == [0, 1]
    assert _handed(consumer, "readings-4", [0]) == [0]


def test_a_record_fetched_around_the_seek_after_an_assignment_is_read_again() -> None:
    """The restarted detector: Faust resumed readings-0 before seeking it to its commit (14);
    a fetch answered around the seek brought record 14 and moved the consumer past it, and
    Faust's flow resumption then emptied the stream's queue (test_worker_restart, 2026-12-04)."""
    consumer = _Consumer()
    assigned(consumer, {"readings-0", "readings-1"})
    assert _handed(consumer, "readings-0", [14]) == []
    sought(consumer, {"readings-0": 14, "readings-1": 7})
    assert _handed(consumer, "readings-0", [14]) == []  # flow not resumed yet
    assert _handed(consumer, "readings-1", [7]) == []  # not for this one either
    assert resumed(consumer) == {"readings-0": 14, "readings-1": 7}
    seeking(consumer, "readings-0", 14)
    seeking(consumer, "readings-1", 7)
    assert _handed(consumer, "readings-0", [14, 15]) == [14, 15]
    assert _handed(consumer, "readings-1", [7]) == [7]


def test_a_partition_quiet_around_its_seek_flows_when_flow_resumes() -> None:
    consumer = _Consumer()
    assigned(consumer, {"readings-1"})
    sought(consumer, {"readings-1": 22})
    assert resumed(consumer) == {}  # nothing held: no seek back
    assert _handed(consumer, "readings-1", [21, 22, 23]) == [22, 23]


def test_what_was_held_from_an_uncommitted_partition_is_read_again_from_offset_0() -> None:
    """Nobody committed anything there: what was held back is read again from the start,
    and nothing after it handed over first."""
    consumer = _Consumer()
    assigned(consumer, {"readings-5"})
    assert _handed(consumer, "readings-5", [3, 4]) == []
    sought(consumer, {"readings-5": None})
    assert resumed(consumer) == {"readings-5": 0}
    assert _handed(consumer, "readings-5", [5]) == []  # not before 0 to 4
    seeking(consumer, "readings-5", 0)
    assert _handed(consumer, "readings-5", [0, 1, 2, 3, 4, 5]) == [0, 1, 2, 3, 4, 5]


def test_a_resumption_before_the_seek_to_committed_offsets_releases_nothing() -> None:
    """Faust resumes flow while it reads the changelogs, before the stream partitions' seek."""
    consumer = _Consumer()
    assigned(consumer, {"readings-6"})
    _handed(consumer, "readings-6", [9])
    assert resumed(consumer) == {}  # no seek back before its seek to the commit
    assert _handed(consumer, "readings-6", [10]) == []
    sought(consumer, {"readings-6": 9})
    assert resumed(consumer) == {"readings-6": 9}


def test_a_partition_paused_when_flow_resumes_waits_for_the_next_resumption() -> None:
    """A seek made while Faust still keeps the stream partitions paused (its fetch loop seeks
    to committed offsets when flow is stopped) does not release them."""
    consumer = _Consumer()
    consumer._paused_partitions = {"readings-7"}  # type: ignore[attr-defined]
    assigned(consumer, {"readings-7"})
    sought(consumer, {"readings-7": 12})
    assert resumed(consumer) == {}  # the changelogs are read: readings-7 stays paused
    consumer._paused_partitions = set()  # type: ignore[attr-defined]
    assert _handed(consumer, "readings-7", [12]) == []  # resumed, not yet sought again
    sought(consumer, {"readings-7": 12})
    assert resumed(consumer) == {"readings-7": 12}


def test_a_new_assignment_forgets_what_the_previous_one_expected() -> None:
    consumer = _Consumer()
    sought(consumer, {"readings-6": 90})
    _handed(consumer, "readings-7", [12], flowing=False)
    assigned(consumer, {"readings-6"})
    sought(consumer, {"readings-6": 40})
    assert resumed(consumer) == {}
    assert _handed(consumer, "readings-6", [40]) == [40]


class _SeekingConsumer:
    """What Faust's resume_flow and the seek back touch, with the seeks recorded."""

    def __init__(self, assignment: set[str]) -> None:
        self.flow_active = False
        self.can_resume_flow = asyncio.Event()
        self.suspend_flow = asyncio.Event()
        self._assignment = assignment
        self.seeks: list[tuple[str, int]] = []

    def assignment(self) -> set[str]:
        return self._assignment

    async def seek(self, tp: str, offset: int) -> None:
        seeking(self, tp, offset)
        self.seeks.append((tp, offset))


@pytest.mark.usefixtures("real_faust")
async def test_resuming_flow_seeks_back_to_the_first_record_still_held() -> None:
    install_seek_guard()
    consumer = _SeekingConsumer({"readings-8", "readings-9"})
    _handed(consumer, "readings-8", [30, 31], flowing=False)
    _handed(consumer, "readings-9", [50], flowing=False)
    _handed(consumer, "readings-8", [29], flowing=False)  # an older fetch came in late
    _handed(consumer, "gone-0", [5], flowing=False)  # revoked meanwhile: no seek
    Consumer.resume_flow(consumer)  # type: ignore[arg-type]
    await consumer._veille_reseek_task  # type: ignore[attr-defined]
    assert sorted(consumer.seeks) == [("readings-8", 29), ("readings-9", 50)]
    assert consumer.flow_active
    assert _handed(consumer, "readings-8", [29, 30]) == [29, 30]


class _LogStartConsumer(_SeekingConsumer):
    """A consumer whose partitions' logs start at ``log_start`` (None: the broker fails)."""

    def __init__(self, assignment: set[str], log_start: int | None) -> None:
        super().__init__(assignment)
        self.log_start = log_start
        self.counted: list[tuple[str, int, int]] = []
        self.starts_asked = 0
        self.clock = Clock()
        self._veille_missing = MissingOffsets(self.clock)

    async def earliest_offsets(self, *partitions: str) -> dict[str, int]:
        self.starts_asked += 1
        if self.log_start is None:
            raise ConnectionError("broker unreachable")
        return dict.fromkeys(partitions, self.log_start)

    async def count(self, consumer: object, tp: str, first: int, last: int) -> None:
        assert consumer is self
        self.counted.append((tp, first, last))


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


async def _skipped_again(consumer: _LogStartConsumer, tp: str, fetched: list[int]) -> None:
    """The fetch loop: the records it got, and the read-again it then asks for."""
    consumer.asked = None  # type: ignore[attr-defined]
    _handed(consumer, tp, fetched)
    asked: int | None = consumer.asked  # type: ignore[attr-defined]
    if asked is not None:
        got = next(offset for offset in fetched if offset > asked)
        await read_again(consumer, tp, asked, got, consumer.count)


async def test_a_skipped_offset_is_sought_back_to_without_asking_the_log_start() -> None:
    consumer = _LogStartConsumer({"readings-0"}, log_start=4)  # Tansu: batch 4 written first
    await _skipped_again(consumer, "readings-0", [1, 2, 4])
    assert consumer.seeks == [("readings-0", 3)] and consumer.starts_asked == 0
    assert consumer.counted == []
    await _skipped_again(consumer, "readings-0", [3, 4])
    assert consumer.seeks == [("readings-0", 3)]


async def test_a_skipped_offset_removed_by_retention_counts_as_processed() -> None:
    """Retention took 3..9 before this worker read them: at the third try, read on from 10,
    and let the commit pass them (else Faust's commit would wait before 3 for ever)."""
    consumer = _LogStartConsumer({"readings-0"}, log_start=10)
    await _skipped_again(consumer, "readings-0", [1, 2, 10])
    for _ in range(CONFIRM_TRIES - 1):
        await _skipped_again(consumer, "readings-0", [10, 11])
    assert consumer.counted == [("readings-0", 3, 9)]
    assert consumer.seeks == [("readings-0", 3)] * (CONFIRM_TRIES - 1) + [("readings-0", 10)]
    assert _handed(consumer, "readings-0", [10, 11]) == [10, 11]


async def test_an_offset_that_never_comes_is_given_up_and_counted_as_processed() -> None:
    consumer = _LogStartConsumer({"readings-0"}, log_start=0)
    await _skipped_again(consumer, "readings-0", [1, 2, 4])
    for _ in range(CONFIRM_TRIES):
        consumer.clock.now += 1
        await _skipped_again(consumer, "readings-0", [4])
    assert set(consumer.seeks) == {("readings-0", 3)} and consumer.counted == []
    consumer.clock.now += GIVE_UP_S
    await _skipped_again(consumer, "readings-0", [4, 5])
    assert consumer.counted == [("readings-0", 3, 3)]
    assert consumer.seeks[-1] == ("readings-0", 4)
    assert _handed(consumer, "readings-0", [4, 5]) == [4, 5]


async def test_a_log_start_the_broker_cannot_give_still_seeks_back() -> None:
    consumer = _LogStartConsumer({"readings-0"}, log_start=None)
    await _skipped_again(consumer, "readings-0", [1, 2, 4])
    for _ in range(CONFIRM_TRIES):
        await _skipped_again(consumer, "readings-0", [4])
    assert set(consumer.seeks) == {("readings-0", 3)} and consumer.starts_asked >= 1


async def test_a_partition_revoked_while_waiting_to_read_again_is_not_sought() -> None:
    consumer = _LogStartConsumer({"readings-0"}, log_start=0)
    consumer._assignment = set()
    await _skipped_again(consumer, "readings-0", [1, 2, 4])
    assert consumer.seeks == []


FAUST_ADD_GAP = Consumer._add_gap  # at collection, before any test installs the guard


async def test_offsets_counted_as_processed_let_faust_commit_past_them() -> None:
    """The retention case through Faust's own bookkeeping: committed 3, records 3..9 gone,
    10 and 11 processed: the next commit is 12."""
    assert FAUST_ADD_GAP.__qualname__ == "Consumer._add_gap"  # Faust's, not the guard's
    tp = "readings-0"
    books = SimpleNamespace(
        _committed_offset=defaultdict(lambda: None, {tp: 3}),
        _gap=defaultdict(IntervalTree),
        _acked=defaultdict(list),
        _acked_index=defaultdict(set),
    )
    await FAUST_ADD_GAP(books, tp, 3, 9)
    books._acked[tp].extend([10, 11])
    assert Consumer._new_offset(books, tp) == 12  # type: ignore[arg-type]


# -- the patches on the real classes, and their guard -----------------------------------------

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
PATCHED: dict[type, tuple[str, ...]] = {
    Consumer: (*ACK_GUARD_MEMBERS, *SEEK_GUARD_MEMBERS),
    AIOKafkaConsumerThread: (*END_OFFSET_MEMBERS, *FETCH_WAIT_MEMBERS),
}
INSTALLED_FLAGS: dict[type, tuple[str, ...]] = {
    Consumer: ("_veille_ack_guarded", "_veille_seek_guarded"),
    AIOKafkaConsumerThread: ("_veille_tansu_patched", "_veille_fetch_wait_patched"),
}


@pytest.fixture
def real_faust(monkeypatch: pytest.MonkeyPatch) -> None:
    """Faust's classes as installed, put back after the test (patches are process-wide)."""
    for cls, members in PATCHED.items():
        for member in members:
            monkeypatch.setattr(cls, member, getattr(cls, member))
        for flag in INSTALLED_FLAGS[cls]:
            monkeypatch.setattr(cls, flag, False, raising=False)


def _install_all() -> None:
    install_rebalance_ack_guard()
    install_seek_guard()
    install_end_offset_workaround("127.0.0.1:9092")  # patches only; connects when called
    install_fetch_wait(100)


@pytest.mark.usefixtures("real_faust")
def test_every_patched_member_of_the_real_faust_classes_is_ours_after_install() -> None:
    originals = {(cls, m): getattr(cls, m) for cls, members in PATCHED.items() for m in members}
    _install_all()
    for (cls, member), original in originals.items():
        replaced = getattr(cls, member)
        assert replaced is not original, member
        assert replaced.__module__ in {
            "streams._faust_compat", "streams._tansu_compat", "streams._fetch_wait",
        }, member  # fmt: skip


@pytest.mark.usefixtures("real_faust")
def test_a_member_faust_no_longer_has_stops_the_install_naming_it_and_the_pin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(Consumer, "_add_gap")
    getmany = Consumer.getmany
    with pytest.raises(
        IncompatibleLibraryError, match=r"no _add_gap .*faust-streaming>=0\.15\.2,<0\.16"
    ):
        install_seek_guard()
    assert Consumer.getmany is getmany  # nothing half-patched


@pytest.mark.usefixtures("real_faust")
def test_a_faust_outside_the_pin_stops_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(library_pins.importlib.metadata, "version", lambda _: "0.16.0")
    with pytest.raises(
        IncompatibleLibraryError, match=r"0\.16\.0 .*faust-streaming>=0\.15\.2,<0\.16"
    ):
        install_rebalance_ack_guard()


def test_the_pin_checked_is_the_one_in_pyproject_and_admits_the_installed_faust() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    assert str(FAUST_PIN) in dependencies
    assert FAUST_PIN.admits(importlib.metadata.version("faust-streaming"))
    assert FAUST_PIN.admits("0.15.2") and FAUST_PIN.admits("0.15.9.post1")
    assert not FAUST_PIN.admits("0.15.1") and not FAUST_PIN.admits("0.16.0")


@pytest.mark.usefixtures("real_faust")
async def test_the_worker_consumer_faust_creates_waits_as_configured() -> None:
    """Faust writes 1,500 ms into its consumer; the setting replaces it (latest install wins:
    one app per worker process)."""
    app = faust.App("veille-fetch-wait-test", broker="kafka://127.0.0.1:9", store="memory://")
    # The real thread would start an event loop of its own.
    thread = SimpleNamespace(app=app, consumer=SimpleNamespace(in_transaction=False))
    install_fetch_wait(250)
    install_fetch_wait(40)
    create = AIOKafkaConsumerThread._create_worker_consumer
    consumer = create(thread, app.transport)  # type: ignore[arg-type]
    try:
        assert consumer._fetch_max_wait_ms == 40
    finally:
        await consumer.stop()  # never started: closes its client only


def test_a_fetch_wait_below_one_millisecond_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1 ms"):
        install_fetch_wait(0)
