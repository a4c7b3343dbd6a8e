"""A record of a revoked assignment is released but never made committable (Faust's
rebalance loss, see streams/_faust_compat.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from streams._faust_compat import guard_ack


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
