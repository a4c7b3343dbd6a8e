"""The final count of one run: what the devices published against what the database holds.

The readings table has a unique natural key (device, metric, measured_at, seq), so a
redelivered reading cannot appear twice there; each test reading has one metric and one
measured_at per seq, so rows beyond one per (device, seq) would still show a key that let a
duplicate through. The dead-letter table's key is derived from the record's origin, not
from the reading, so it is where a redelivery could really leave a duplicate: it is counted
per (device, seq) too.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import psycopg

from .devices import PublishedSet

_SEQ = re.compile(rb'"seq":\s*(\d+)')
_SEQS = re.compile(rb'"seqs":\s*\[([\d,\s]*)\]')


@dataclass(frozen=True, slots=True)
class Stored:
    readings: Counter[tuple[str, int]]
    dead_letters: Counter[tuple[str, int]]
    reasons: dict[tuple[str, int], str]

    def accounted(self) -> set[tuple[str, int]]:
        return set(self.readings) | set(self.dead_letters)


@dataclass(frozen=True, slots=True)
class RunCount:
    scenario: str
    published: int
    acknowledged: int
    stored: int
    dead_lettered: int
    lost: int
    duplicates: int
    misrouted: int  # stored when it should be dead-lettered, or with the wrong reason
    missing: list[tuple[str, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    drain_problems: list[str] = field(default_factory=list)  # SIGTERM exits slow or unclean

    @property
    def balanced(self) -> bool:
        """Every published reading is stored or dead-lettered, nothing twice, nothing lost."""
        return (
            self.lost == 0
            and self.duplicates == 0
            and self.misrouted == 0
            and self.published == self.stored + self.dead_lettered
        )


async def read_stored(dsn: str, device_ids: list[str]) -> Stored:
    readings: Counter[tuple[str, int]] = Counter()
    dead: Counter[tuple[str, int]] = Counter()
    reasons: dict[tuple[str, int], str] = {}
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT device_id, seq, count(*) FROM readings WHERE device_id = ANY(%s) "
            "GROUP BY device_id, seq",
            (device_ids,),
        )
        for device, seq, n in await cur.fetchall():
            readings[(device, seq)] = n
        cur = await conn.execute(
            "SELECT device_id, reason, raw FROM dead_letters WHERE device_id = ANY(%s)",
            (device_ids,),
        )
        for device, reason, raw in await cur.fetchall():
            for seq in _seqs_in(raw.encode()):
                dead[(device, seq)] += 1
                reasons[(device, seq)] = reason
    return Stored(readings, dead, reasons)


def _seqs_in(raw: bytes) -> list[int]:
    many = _SEQS.search(raw)
    if many:
        return [int(s) for s in many.group(1).split(b",") if s.strip()]
    return [int(m) for m in _SEQ.findall(raw)]


def settled(published: PublishedSet, stored: Stored) -> bool:
    return set(published.expected) <= stored.accounted()


def count_run(scenario: str, published: PublishedSet, stored: Stored) -> RunCount:
    acknowledged = published.acknowledged()
    accounted = stored.accounted()
    missing = sorted(acknowledged - accounted)
    misrouted = 0
    for key, fate in published.expected.items():
        if fate == "stored" and key in stored.dead_letters:
            misrouted += 1
        elif fate != "stored" and (key in stored.readings or stored.reasons.get(key, fate) != fate):
            misrouted += 1
    duplicates = sum(n - 1 for n in stored.readings.values()) + sum(
        n - 1 for n in stored.dead_letters.values()
    )
    notes = []
    unacked_missing = set(published.expected) - acknowledged - accounted
    if unacked_missing:
        notes.append(f"{len(unacked_missing)} never acknowledged and not stored (allowed)")
    return RunCount(
        scenario=scenario,
        published=len(published.expected),
        acknowledged=len(acknowledged),
        stored=len(stored.readings),
        dead_lettered=len(stored.dead_letters),
        lost=len(missing),
        duplicates=duplicates,
        misrouted=misrouted,
        missing=missing[:20],
        notes=notes,
    )
