"""Wait for a condition with a deadline: tests never sleep a fixed time and hope."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    *,
    timeout_s: float = 60.0,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until ``accept(result)``; fail with the last value seen."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if accept(last):
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what} not reached within {timeout_s:.0f} s; last value: {last!r}")
