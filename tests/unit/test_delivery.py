"""An event's outputs are confirmed, failed sends are sent again, before the event is acked."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaTimeoutError

from streams._delivery import deliver


class FlakyTopic:
    """Sends resolve like Faust's FutureMessage; the first ``failures`` sends fail."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[bytes] = []

    async def send(self, *, key: bytes, value: bytes) -> asyncio.Future[int]:
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

    retries = await deliver([(topic, b"k", b"a"), (topic, b"k", b"b"), (topic, b"k", b"c")])

    assert retries == 1
    assert sorted(topic.sent) == [b"a", b"b", b"c"]


async def test_nothing_to_send_returns_at_once() -> None:
    assert await deliver([]) == 0
