"""A stream's events gathered into groups, so a worker packs its outputs across records.

Faust hands an agent one event at a time, and every record the agent writes costs the broker
and the next stage more than its bytes (docs/BENCHMARKS.md). A group closes when it holds
``max_events`` or ``within_s`` after its first event, whichever comes first, and goes whole, in
order, to the handler, which sends one record per partition for the lot and has the events
acked once Kafka confirmed them (``ConfirmedAcks.send_group``). The events stay unacked
meanwhile, like those waiting for confirmation: a rebalance waits for them (Faust's
``stream_wait_empty``), a crash has them read again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

__all__ = ["EventGroups", "event_groups"]

Handler = Callable[[Sequence[Any]], Awaitable[None]]


class EventGroups:
    """Gathers events; the group is handled by :meth:`add` when full, by
    :meth:`flush_when_due` when its time is up."""

    def __init__(self, handle: Handler, *, max_events: int, within_s: float) -> None:
        if max_events < 1 or within_s < 0:
            raise ValueError("a group holds at least one event, for no negative time")
        self._handle = handle
        self._max = max_events
        self._within = within_s
        self._events: list[Any] = []
        self._lock = asyncio.Lock()
        self._due = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._flusher: asyncio.Future[None] | None = None
        self.groups = 0

    async def add(self, event: Any) -> None:
        if self._flusher is not None and self._flusher.done():
            # Surfaces the timer task's failure in the agent, which Faust then reports.
            raise RuntimeError("the task handling due event groups has stopped") from (
                None if self._flusher.cancelled() else self._flusher.exception()
            )
        async with self._lock:
            self._events.append(event)
            if len(self._events) == 1:
                loop = asyncio.get_running_loop()
                self._timer = loop.call_later(self._within, self._due.set)
            if len(self._events) >= self._max:
                await self._flush()

    async def flush(self) -> None:
        """Hand the open group to the handler now (used on the way out)."""
        async with self._lock:
            await self._flush()

    async def flush_when_due(self) -> None:
        while True:
            await self._due.wait()
            async with self._lock:
                if self._due.is_set():  # else a full group was handled meanwhile
                    await self._flush()

    async def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._due.clear()
        events, self._events = self._events, []
        if events:
            self.groups += 1
            await self._handle(events)


@contextlib.asynccontextmanager
async def event_groups(
    handle: Handler, *, max_events: int, within_s: float
) -> AsyncIterator[EventGroups]:
    """:class:`EventGroups` with its timer task for the life of an agent; the open group is
    handled on the way out."""
    groups = EventGroups(handle, max_events=max_events, within_s=within_s)
    flusher = groups._flusher = asyncio.ensure_future(groups.flush_when_due())  # noqa: SLF001
    try:
        yield groups
        await groups.flush()
    finally:
        if not flusher.done():  # a failed one was reported by ``add``
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
