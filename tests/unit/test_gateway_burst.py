"""A burst: the first message wakes the gateway's loop, the rest of the linger's arrivals are
taken when it ends (no wake-up per message), and nothing is lost between the two."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

from devices import SUBSCRIPTION_FILTER
from ingest._gateway import _take_burst
from ingest._mqtt import GatewaySession, InboundMessage, MqttEndpoint


def _session(queue: asyncio.Queue[InboundMessage]) -> GatewaySession:
    return GatewaySession(
        MqttEndpoint.parse("mqtt://127.0.0.1:1"),
        client_id="veille-test",
        subscription=SUBSCRIPTION_FILTER,
        receive_maximum=100,
        session_expiry_s=60,
        queue=queue,
    )


def _arrive(session: GatewaySession, mid: int) -> None:
    """What paho's thread does for one PUBLISH."""
    message = SimpleNamespace(
        topic="veille/v1/t/d/vitals", payload=b"{}", mid=mid, qos=1, dup=False
    )
    session._on_message(None, None, message)  # type: ignore[arg-type]


class _CountingLoop:
    """Counts the wake-ups paho's thread asks of the loop."""

    def __init__(self, session: GatewaySession) -> None:
        self.wakes = 0
        loop = asyncio.get_running_loop()

        def call_soon_threadsafe(callback: object, *args: object) -> object:
            self.wakes += 1
            return loop.call_soon_threadsafe(callback, *args)  # type: ignore[arg-type]

        session._loop = SimpleNamespace(call_soon_threadsafe=call_soon_threadsafe)  # type: ignore[assignment]


async def test_one_wake_up_for_a_burst_and_every_message_in_it() -> None:
    queue = asyncio.Queue[InboundMessage]()
    session = _session(queue)
    counting = _CountingLoop(session)
    burst = asyncio.ensure_future(_take_burst(queue, 0.2, session))
    await asyncio.sleep(0.01)

    def paho() -> None:
        for mid in range(1, 51):
            _arrive(session, mid)

    thread = threading.Thread(target=paho)
    thread.start()
    taken = await burst
    thread.join()
    assert [m.mid for m in taken] == list(range(1, 51))
    assert 1 <= counting.wakes <= 2  # the first arrival; maybe one racing the flag's reset


async def test_what_arrives_while_the_loop_forwards_waits_for_the_next_burst_unannounced() -> None:
    queue = asyncio.Queue[InboundMessage]()
    session = _session(queue)
    counting = _CountingLoop(session)
    _arrive(session, 1)  # before the first burst: the loop is waiting, so it is woken
    first = await _take_burst(queue, 0.0, session)
    for mid in (2, 3, 4):  # the loop is busy forwarding ``first``: no wake-up
        _arrive(session, mid)
    assert counting.wakes == 1
    second = await asyncio.wait_for(_take_burst(queue, 0.0, session), 1.0)
    assert [m.mid for m in first] == [1]
    assert [m.mid for m in second] == [2, 3, 4]
    assert counting.wakes == 1


async def test_a_message_arriving_while_the_loop_waits_wakes_it() -> None:
    queue = asyncio.Queue[InboundMessage]()
    session = _session(queue)
    burst = asyncio.ensure_future(_take_burst(queue, 0.0, session))
    await asyncio.sleep(0.01)
    assert not burst.done()
    threading.Thread(target=_arrive, args=(session, 9)).start()
    taken = await asyncio.wait_for(burst, 1.0)
    assert [m.mid for m in taken] == [9]
