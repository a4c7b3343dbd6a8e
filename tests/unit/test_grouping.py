"""EventGroups: events handed over in order, in groups closed by size or by time."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from streams._grouping import EventGroups, event_groups


class Recorder:
    def __init__(self) -> None:
        self.groups: list[list[Any]] = []

    async def __call__(self, events: Sequence[Any]) -> None:
        self.groups.append(list(events))


async def test_a_full_group_is_handled_at_once_in_order() -> None:
    seen = Recorder()
    async with event_groups(seen, max_events=3, within_s=60) as groups:
        for n in range(7):
            await groups.add(n)
        assert seen.groups == [[0, 1, 2], [3, 4, 5]]
    assert seen.groups == [[0, 1, 2], [3, 4, 5], [6]]  # the open group, on the way out


async def test_a_group_closes_when_its_time_is_up_without_another_event() -> None:
    seen = Recorder()
    async with event_groups(seen, max_events=100, within_s=0.05) as groups:
        await groups.add("a")
        await groups.add("b")
        await asyncio.sleep(0.2)
        assert seen.groups == [["a", "b"]]
        await groups.add("c")
        await asyncio.sleep(0.2)
        assert seen.groups == [["a", "b"], ["c"]]


async def test_a_handler_failure_in_the_timer_task_surfaces_in_the_agent() -> None:
    async def broken(events: Sequence[Any]) -> None:
        raise ValueError("boom")

    with pytest.raises(RuntimeError, match="has stopped") as caught:
        async with event_groups(broken, max_events=100, within_s=0.01) as groups:
            await groups.add(1)
            await asyncio.sleep(0.1)
            await groups.add(2)
    assert isinstance(caught.value.__cause__, ValueError)


def test_a_group_of_no_events_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one event"):
        EventGroups(Recorder(), max_events=0, within_s=1)
