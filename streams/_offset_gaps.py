"""The sink's guard against a broker that hands over records past one it has not served yet.

Veille's topics are plain logs: no compaction, no transactions, so their offsets have no
holes, and a fetch from offset N must start at N. The embedded Tansu broker broke that once
in a full fault run (2026-12-05, `rebalance` #5, fetch waits of 100 ms): two validators
wrote to the same readings partition during a handover, and the sink's fetch from offset
618 got 619 onwards; aiokafka accepts any offset at or above its position, so the sink
stored and committed past 618, and those ten readings were lost (the record was in the
topic when the run's forensics read it). Faust's workers have their own guard
(``streams/_faust_compat.py``, ``install_seek_guard``); the sink is a plain aiokafka consumer.

:class:`OffsetGuard` keeps the next offset expected per partition (from the last record the
sink took, or the group's committed offset the first time it sees a partition) and cuts each
fetched batch at the first jump: what comes before is stored, and the sink seeks back to the
missing offset to read it again. A record below the expected offset is a replay (a commit
refused after a rebalance), which the natural keys absorb, and is taken. Offsets below the
log's start are gone (retention), not skipped: the sink takes the jump there, with an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

__all__ = ["GAP_RETRY_S", "Gap", "OffsetGuard"]

GAP_RETRY_S = 0.05  # before reading a skipped offset again: the broker's write is under way

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
