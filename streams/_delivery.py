"""Wait until Kafka has every output of an event before Faust may acknowledge the event.

Faust commits an input's offset after flushing its producer, but a send that finally
failed only logs a warning (``Topic._on_published``): the offset is committed anyway and the
output is lost behind it. So each agent sends the outputs of one event, waits for all their
confirmations, and sends again what failed (downstream keys absorb a repeat). The event is
acknowledged only when the agent moves on, i.e. after this returns. The cost is one
produce round trip per event, and an event carries a whole batch of readings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Protocol

__all__ = ["Output", "deliver"]

log = logging.getLogger(__name__)

RETRY_FIRST_DELAY_S = 0.2
RETRY_MAX_DELAY_S = 5.0


class _Topic(Protocol):
    async def send(self, *, key: bytes, value: bytes) -> Any: ...


Output = tuple[_Topic, bytes, bytes]
"""topic, key, value"""


async def deliver(outputs: Sequence[Output]) -> int:
    """Send every output and wait for Kafka's confirmation of each; returns the retries."""
    pending = list(outputs)
    delay = RETRY_FIRST_DELAY_S
    retries = 0
    while pending:
        confirmations = [await topic.send(key=key, value=value) for topic, key, value in pending]
        results = await asyncio.gather(*confirmations, return_exceptions=True)
        failed = [
            out for out, res in zip(pending, results, strict=True) if isinstance(res, Exception)
        ]
        if not failed:
            return retries
        first = next(r for r in results if isinstance(r, Exception))
        retries += 1
        log.warning("%d of %d sends failed (%r); sending them again in %.1f s, input not acked",
                    len(failed), len(pending), first, delay)  # fmt: skip
        await asyncio.sleep(delay)
        delay = min(delay * 2, RETRY_MAX_DELAY_S)
        pending = failed
    return retries
