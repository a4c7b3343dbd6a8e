"""An event is acked only once its outputs are confirmed (failed sends are sent again), in
input order, while the agent goes on with the next events."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaTimeoutError

from streams._delivery import Output, confirmed_acks, deliver


class FlakyTopic:
    """Sends resolve like Faust's FutureMessage; the first ``failures`` sends fail."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[bytes] = []

    async def send(
        self, *, key: bytes, value: bytes, partition: int | None = None
    ) -> asyncio.Future[int]:
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if self.failures > 0:
            self.failures -= 1
            fut.set_exception(KafkaTimeoutError())
        else:
            self.sent.append(value)
            fut.set_result(len(self.sent))
        return fut


async def test_every_output_is_confirmed_and_failures_are_sent_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("streams._delivery.RETRY_FIRST_DELAY_S", 0.0)
    topic = FlakyTopic(failures=1)

    retries = await deliver(
        [Output(topic, b"k", b"a"), Output(topic, b"k", b"b"), Output(topic, b"k", b"c")]
    )

    assert retries == 1
    assert sorted(topic.sent) == [b"a", b"b", b"c"]


async def test_nothing_to_send_returns_at_once() -> None:
    assert await deliver([]) == 0


class RecordingStream:
    def __init__(self) -> None:
        self.acked: list[str] = []

    async def ack(self, event: str) -> bool:
        self.acked.append(event)
        return True


class HeldTopic:
    """Sends whose confirmations the test releases by hand, in any order."""

    def __init__(self) -> None:
        self.futures: list[asyncio.Future[int]] = []

    async def send(
        self, *, key: bytes, value: bytes, partition: int | None = None
    ) -> asyncio.Future[int]:
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.futures.append(fut)
        return fut


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_events_are_acked_in_input_order_once_their_outputs_are_confirmed() -> None:
    stream, topic = RecordingStream(), HeldTopic()
    async with confirmed_acks(stream, max_unconfirmed=10) as acks:
        await acks.send("e1", [Output(topic, b"k", b"1")])
        await acks.send("e2", [Output(topic, b"k", b"2"), Output(topic, b"k", b"3")])
        await acks.send("e3", [])  # no outputs: acked as soon as those before it are
        topic.futures[1].set_result(1)
        topic.futures[2].set_result(2)
        await _settle()
        assert stream.acked == []  # e2 is confirmed but e1 is not: nothing acked yet
        topic.futures[0].set_result(0)
        await _settle()
        assert stream.acked == ["e1", "e2", "e3"]


async def test_a_failed_output_is_sent_again_before_its_event_is_acked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("streams._delivery.RETRY_FIRST_DELAY_S", 0.0)
    stream, topic = RecordingStream(), FlakyTopic(failures=1)
    async with confirmed_acks(stream, max_unconfirmed=10) as acks:
        await acks.send("e1", [Output(topic, b"k", b"a"), Output(topic, b"k", b"b")])
        await acks.drained()
        assert stream.acked == ["e1"]
        assert sorted(topic.sent) == [b"a", b"b"]
        assert acks.retries == 1


async def test_the_agent_waits_when_too_many_events_are_unconfirmed() -> None:
    stream, topic = RecordingStream(), HeldTopic()
    async with confirmed_acks(stream, max_unconfirmed=1) as acks:
        await acks.send("e1", [Output(topic, b"k", b"1")])
        await _settle()  # the confirming task holds e1, waiting for Kafka
        await acks.send("e2", [Output(topic, b"k", b"2")])
        third = asyncio.ensure_future(acks.send("e3", [Output(topic, b"k", b"3")]))
        await _settle()
        assert not third.done()  # e2 waits in the bounded queue: the agent is held back
        for fut in topic.futures:  # e3's send went out before it waited for room
            fut.set_result(0)
        await _settle()
        assert third.done()
    assert stream.acked == ["e1", "e2", "e3"]


async def test_unconfirmed_events_stay_unacked_when_the_agent_stops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Their partition's next owner reads them again: at-least-once, never acked unsent."""
    monkeypatch.setattr("streams._delivery.DRAIN_ON_STOP_S", 0.05)
    stream, topic = RecordingStream(), HeldTopic()
    async with confirmed_acks(stream, max_unconfirmed=10) as acks:
        await acks.send("e1", [Output(topic, b"k", b"1")])
    assert stream.acked == []


async def test_a_group_is_acked_only_once_what_it_waits_for_is_done_too() -> None:
    """The detector's groups wait for their patients' states to reach the table."""
    stream, topic = RecordingStream(), HeldTopic()
    states_written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    async with confirmed_acks(stream, max_unconfirmed=10) as acks:
        await acks.send_group(["e1", "e2"], [Output(topic, b"k", b"1")], None, states_written)
        await acks.send_group(["e3"], [])
        topic.futures[0].set_result(0)
        await _settle()
        assert stream.acked == []  # confirmed by Kafka, states not written yet
        states_written.set_result(None)
        await _settle()
        assert stream.acked == ["e1", "e2", "e3"]


async def test_a_failed_state_write_stops_the_agent_with_its_events_unacked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("streams._delivery.DRAIN_ON_STOP_S", 0.05)
    stream = RecordingStream()
    states_written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    with pytest.raises(KeyError, match="table write failed"):  # the agent's crash
        async with confirmed_acks(stream, max_unconfirmed=10) as acks:
            await acks.send_group(["e1"], [], None, states_written)
            states_written.set_exception(KeyError("table write failed"))
            await _settle()
            with pytest.raises(RuntimeError, match="confirming sends has stopped"):
                await acks.send_group(["e2"], [])
    assert stream.acked == []
