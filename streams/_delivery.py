"""Ack an event only once Kafka has confirmed every output of it, without waiting in line.

Faust commits an input's offset after flushing its producer, but a send that finally
failed only logs a warning (``Topic._on_published``): the offset is committed anyway and the
output is lost behind it. So the agents iterate with manual acks (``Stream.noack``): each
event's outputs are sent, and :class:`ConfirmedAcks` acks the event, in input order, once
all their confirmations are in, sending again what failed (downstream keys absorb a
repeat). The agent goes on with the next events meanwhile, so Kafka's round trips overlap
instead of costing one per event; at most ``max_unconfirmed`` events wait, which bounds the
memory and pushes back on the agent when Kafka is slow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, NamedTuple, Protocol

__all__ = ["ConfirmedAcks", "Output", "confirmed_acks", "deliver"]

log = logging.getLogger(__name__)

RETRY_FIRST_DELAY_S = 0.2
RETRY_MAX_DELAY_S = 5.0
DRAIN_ON_STOP_S = 5.0


class _Topic(Protocol):
    async def send(self, *, key: bytes, value: bytes, partition: int | None = None) -> Any: ...
    def get_topic_name(self) -> str: ...


class _ManualAckStream(Protocol):
    async def ack(self, event: Any) -> bool: ...


class Output(NamedTuple):
    """One record to send: ``partition`` None lets the producer hash the key."""

    topic: _Topic
    key: bytes
    value: bytes
    partition: int | None = None


_Waiting = tuple[
    Sequence[Any],
    Sequence[Output],
    list[Awaitable[Any]],
    Callable[[], None] | None,
    Awaitable[Any] | None,
]


async def _send_all(outputs: Sequence[Output]) -> list[Awaitable[Any]]:
    return [
        await out.topic.send(key=out.key, value=out.value, partition=out.partition)
        for out in outputs
    ]


async def _failed(
    outputs: Sequence[Output], confirmations: Sequence[Awaitable[Any]]
) -> list[Output]:
    if not confirmations:
        return []
    results = await asyncio.gather(*confirmations, return_exceptions=True)
    failed = [out for out, res in zip(outputs, results, strict=True) if isinstance(res, Exception)]
    if failed:
        first = next(r for r in results if isinstance(r, Exception))
        log.warning("%d of %d sends failed (%r); sending them again, input not acked",
                    len(failed), len(outputs), first)  # fmt: skip
    return failed


async def deliver(outputs: Sequence[Output]) -> int:
    """Send every output and wait for Kafka's confirmation of each; returns the retries."""
    pending = await _failed(outputs, await _send_all(outputs))
    delay = RETRY_FIRST_DELAY_S
    retries = 0
    while pending:
        retries += 1
        await asyncio.sleep(delay)
        delay = min(delay * 2, RETRY_MAX_DELAY_S)
        pending = await _failed(pending, await _send_all(pending))
    return retries


class ConfirmedAcks:
    """Sends an event's outputs now and acks the event when they are all confirmed."""

    def __init__(self, stream: _ManualAckStream, max_unconfirmed: int) -> None:
        self._stream = stream
        self._waiting: asyncio.Queue[_Waiting] = asyncio.Queue(maxsize=max_unconfirmed)
        self.retries = 0
        self._confirming: asyncio.Future[None] | None = None

    @property
    def waiting(self) -> int:
        """Groups sent and not yet confirmed (their events not yet acked)."""
        return self._waiting.qsize()

    async def send(
        self,
        event: Any,
        outputs: Sequence[Output],
        on_confirmed: Callable[[], None] | None = None,
    ) -> None:
        """Send ``outputs`` of ``event``; waits only when ``max_unconfirmed`` events wait.
        ``on_confirmed`` runs once Kafka has them all, just before the event is acked."""
        await self.send_group([event], outputs, on_confirmed)

    async def send_group(
        self,
        events: Sequence[Any],
        outputs: Sequence[Output],
        on_confirmed: Callable[[], None] | None = None,
        before_ack: Awaitable[Any] | None = None,
    ) -> None:
        """:meth:`send` for the outputs of several events together: all are acked, in
        order, once every output is confirmed (and ``before_ack`` is done: the detector's
        states written, ``_state_writes``). A group counts once toward the bound."""
        if self._confirming is not None and self._confirming.done():
            # Surfaces the confirming task's failure in the agent, which Faust then reports.
            raise RuntimeError("the task confirming sends has stopped") from (
                self._confirming.exception()
            )
        confirmations = await _send_all(outputs)
        await self._waiting.put((events, outputs, confirmations, on_confirmed, before_ack))

    async def confirm_forever(self) -> None:
        while True:
            events, outputs, confirmations, on_confirmed, before_ack = await self._waiting.get()
            failed = await _failed(outputs, confirmations)
            if failed:
                await asyncio.sleep(RETRY_FIRST_DELAY_S)
                self.retries += 1 + await deliver(failed)
            if on_confirmed is not None:
                on_confirmed()
            if before_ack is not None:
                await before_ack
            for event in events:
                await self._stream.ack(event)
            self._waiting.task_done()

    async def drained(self) -> None:
        await self._waiting.join()


@contextlib.asynccontextmanager
async def confirmed_acks(
    stream: _ManualAckStream, max_unconfirmed: int
) -> AsyncIterator[ConfirmedAcks]:
    """A :class:`ConfirmedAcks` with its confirming task, for the life of an agent.

    On the way out the events still waiting get a few seconds to be confirmed and acked;
    any left unacked are read again by the partition's next owner.
    """
    acks = ConfirmedAcks(stream, max_unconfirmed)
    confirming = acks._confirming = asyncio.ensure_future(acks.confirm_forever())  # noqa: SLF001
    try:
        yield acks
    finally:
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(acks.drained(), DRAIN_ON_STOP_S)
        confirming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await confirming
