"""A guard against a broker that hands over records past one it has not served yet.

Veille's topics are plain logs: no compaction, no transactions, so their offsets have no
holes, and a fetch from offset N must start at N. The embedded Tansu broker broke that once
in a full fault run (2026-12-05, `rebalance` #5, fetch waits of 100 ms): two validators
wrote to the same readings partition during a handover, and the sink's fetch from offset
618 got 619 onwards; aiokafka accepts any offset at or above its position, so the sink
stored and committed past 618, and those ten readings were lost (the record was in the
topic when the run's forensics read it). Faust's workers have their own guard
(``streams/_faust_compat.py``, ``install_seek_guard``); the sink and the clinic's webhook
recorder are plain aiokafka consumers, guarded by ``_contiguous.py`` with what is below.

:class:`OffsetGuard` keeps the next offset expected per partition (from the last record the
sink took, or the group's committed offset the first time it sees a partition) and cuts each
fetched batch at the first jump: what comes before is stored, and the sink seeks back to the
missing offset to read it again. A record below the expected offset is a replay (a commit
refused after a rebalance), which the natural keys absorb, and is taken. With no commit the
next offset is 0: Tansu's "earliest" can name a later batch written first (see
CONFIRM_TRIES). :class:`MissingOffsets` counts the tries at one missing offset: from the
third, offsets below the log's start are taken as gone (retention), with an error; after
GIVE_UP_S one that never came is given up, with an error. The workers' guard
(``streams/_faust_compat.py``) uses :class:`MissingOffsets` the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

__all__ = [
    "CONFIRM_TRIES", "GAP_RETRY_S", "GIVE_UP_S", "Attempt", "Gap", "MissingOffsets",
    "OffsetGuard",
]  # fmt: skip

GAP_RETRY_S = 0.05  # before reading a skipped offset again: the broker's write is under way
# Tansu's window lasts while one produce request writes its batch: milliseconds. An offset
# still skipped at the third try is not in it: only then is the log's start asked (Tansu's
# "earliest" is its oldest batch object by time, which that window can make a later one).
CONFIRM_TRIES = 3
# An offset that never appears (a produce that failed after raising the high-water mark: its
# producer got the error and wrote the records again elsewhere) stops its partition this long.
GIVE_UP_S = 30.0

K = TypeVar("K")


class _Record(Protocol):
    @property
    def offset(self) -> int: ...


R = TypeVar("R", bound=_Record)


@dataclass(frozen=True, slots=True)
class Gap(Generic[K]):
    """Offsets ``expected`` .. ``got - 1`` of ``partition`` were skipped by a fetch."""

    partition: K
    expected: int
    got: int


class OffsetGuard:
    """The next offset expected per partition; see the module's docstring."""

    def __init__(self) -> None:
        self._next: dict[object, int | None] = {}

    def knows(self, partition: object) -> bool:
        return partition in self._next

    def forget(self, partitions: Iterable[object]) -> None:
        """Partitions assigned or revoked: when one is next fetched, its expected offset is
        read again from the group's commit (another consumer may have moved it)."""
        for partition in partitions:
            self._next.pop(partition, None)

    def expect(self, partition: object, offset: int | None) -> None:
        """Where the next record of ``partition`` must start (None: anywhere, as when the
        group has committed nothing there yet)."""
        self._next[partition] = offset

    def cut(self, batch: Mapping[K, Sequence[R]]) -> tuple[dict[K, list[R]], list[Gap[K]]]:
        """Each partition's records up to the first skipped offset, and the gaps found."""
        kept: dict[K, list[R]] = {}
        gaps: list[Gap[K]] = []
        for partition, records in batch.items():
            expected = self._next.get(partition)
            taken = 0
            for record in records:
                if expected is not None and record.offset > expected:
                    gaps.append(Gap(partition, expected, record.offset))
                    break
                expected = record.offset + 1
                taken += 1
            if taken:
                kept[partition] = list(records[:taken])
                self._next[partition] = expected
        return kept, gaps


@dataclass(slots=True)
class Attempt:
    """How often, and for how long, one partition has read the same missing offset again."""

    offset: int
    since: float
    tries: int = 0
    waited_s: float = 0.0

    @property
    def first(self) -> bool:
        return self.tries == 1

    @property
    def confirmed(self) -> bool:
        """Skipped too often for Tansu's window: ask whether the log still holds it."""
        return self.tries >= CONFIRM_TRIES

    @property
    def overdue(self) -> bool:
        """Waited for long enough: the offset will never appear."""
        return self.waited_s >= GIVE_UP_S


class MissingOffsets:
    """Per partition, the missing offset it is reading again, since when and how often."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._attempts: dict[object, Attempt] = {}

    def attempt(self, partition: object, offset: int) -> Attempt:
        """One more try at ``offset`` of ``partition`` (a new offset starts the count again)."""
        now = self._clock()
        found = self._attempts.get(partition)
        if found is None or found.offset != offset:
            found = self._attempts[partition] = Attempt(offset, now)
        found.tries += 1
        found.waited_s = now - found.since
        return found

    def settle(self, partitions: Iterable[object]) -> None:
        """The partitions moved on (their missing offset came, or is given up, or they went)."""
        for partition in partitions:
            self._attempts.pop(partition, None)

    def clear(self) -> None:
        self._attempts.clear()
