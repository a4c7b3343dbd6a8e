"""A record of a revoked assignment is released but never made committable (Faust's
rebalance loss, see streams/_faust_compat.py); the patches land on the real Faust classes,
and refuse a Faust they were not written for."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from streams import _library_pins
from streams._faust_compat import (
    ACK_GUARD_MEMBERS,
    SEEK_GUARD_MEMBERS,
    guard_ack,
    hold_back,
    install_rebalance_ack_guard,
    install_seek_guard,
    sought,
)
from streams._library_pins import FAUST_PIN
from streams._tansu_compat import END_OFFSET_MEMBERS, install_end_offset_workaround
from veille.errors import IncompatibleLibraryError


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
    assert _handed(consumer, "readings-0", [518, 519, 554]) == [518, 519, 554]


def test_a_sought_record_that_went_by_unseen_is_read_again() -> None:
    consumer = _Consumer()
    sought(consumer, {"readings-1": 172})
    assert _handed(consumer, "readings-1", [173, 174]) == []
    assert consumer.asked == 172  # type: ignore[attr-defined]
    assert _handed(consumer, "readings-1", [172, 173]) == [172, 173]  # after the seek


def test_records_fetched_while_flow_is_suspended_are_held_and_remembered() -> None:
    consumer = _Consumer()
    assert _handed(consumer, "readings-2", [40, 41, 42], flowing=False) == []
    assert consumer._veille_reseek == {"readings-2": 40}  # type: ignore[attr-defined]
    sought(consumer, {"readings-2": 40})  # the seek made when flow resumes
    assert consumer._veille_reseek == {}  # type: ignore[attr-defined]
    assert _handed(consumer, "readings-2", [40, 41]) == [40, 41]


def test_a_partition_without_a_committed_offset_is_not_held() -> None:
    consumer = _Consumer()
    sought(consumer, {"readings-3": None, "readings-4": 0})
    assert _handed(consumer, "readings-3", [0, 1]) == [0, 1]
    assert _handed(consumer, "readings-4", [0]) == [0]


# -- the patches on the real classes, and their guard -----------------------------------------

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
PATCHED: dict[type, tuple[str, ...]] = {
    Consumer: (*ACK_GUARD_MEMBERS, *SEEK_GUARD_MEMBERS),
    AIOKafkaConsumerThread: END_OFFSET_MEMBERS,
}
INSTALLED_FLAGS: dict[type, tuple[str, ...]] = {
    Consumer: ("_veille_ack_guarded", "_veille_seek_guarded"),
    AIOKafkaConsumerThread: ("_veille_tansu_patched",),
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


@pytest.mark.usefixtures("real_faust")
def test_every_patched_member_of_the_real_faust_classes_is_ours_after_install() -> None:
    originals = {(cls, m): getattr(cls, m) for cls, members in PATCHED.items() for m in members}
    _install_all()
    for (cls, member), original in originals.items():
        replaced = getattr(cls, member)
        assert replaced is not original, member
        assert replaced.__module__ in {"streams._faust_compat", "streams._tansu_compat"}, member


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
    monkeypatch.setattr(_library_pins.importlib.metadata, "version", lambda _: "0.16.0")
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
