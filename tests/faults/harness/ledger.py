"""The final count of one run: what the devices published against what the database holds.

The readings table has a unique natural key (device, metric, measured_at, seq), so a
redelivered reading cannot appear twice there; each test reading has one metric and one
measured_at per seq, so rows beyond one per (device, seq) would still show a key that let a
duplicate through. The dead-letter table's key is derived from the record's origin, not
from the reading, so it is where a redelivery could really leave a duplicate: it is counted
per (device, seq) too.

Detection is counted by alert: every acknowledged tachycardia episode must have opened one
of its possible alert ids (``missed`` otherwise), and no other ``heart_rate_high`` alert may
exist for the run's patients (``extra``: an episode opened twice, or an alert from nothing).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import psycopg

from .devices import EPISODE_RULE, Episode, PublishedSet

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
    episodes: int = 0  # acknowledged tachycardia episodes, each must open one alert
    missed_alerts: int = 0
    extra_alerts: int = 0
    missing: list[tuple[str, int]] = field(default_factory=list)
    missed_episodes: list[Episode] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    drain_problems: list[str] = field(default_factory=list)  # SIGTERM exits slow or unclean
    problems: list[str] = field(default_factory=list)  # the scenario's own checks (spread, ...)

    @property
    def clean(self) -> bool:
        """Balanced, every process out cleanly on SIGTERM, the scenario's own checks passed."""
        return self.balanced and not self.drain_problems and not self.problems

    @property
    def balanced(self) -> bool:
        """Every published reading is stored or dead-lettered, nothing twice, nothing lost."""
        return (
            self.lost == 0
            and self.duplicates == 0
            and self.misrouted == 0
            and self.published == self.stored + self.dead_lettered
            and self.missed_alerts == 0
            and self.extra_alerts == 0
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


async def read_alert_ids(dsn: str, patients: list[str]) -> set[str]:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT alert_id::text FROM alerts WHERE rule = %s AND patient_pseudonym = ANY(%s)",
            (EPISODE_RULE, patients),
        )
        return {row[0] for row in await cur.fetchall()}


def acknowledged_episodes(published: PublishedSet) -> list[Episode]:
    acknowledged = published.acknowledged()
    return [
        e for e in published.episodes if all((e.device_id, seq) in acknowledged for seq in e.seqs)
    ]


def missed_episodes(published: PublishedSet, alert_ids: set[str]) -> list[Episode]:
    return [e for e in acknowledged_episodes(published) if not e.alert_ids & alert_ids]


def episodes_alerted(published: PublishedSet, alert_ids: set[str]) -> tuple[int, int, int]:
    """(acknowledged episodes, of them without an alert, alerts beyond one per episode)."""
    must = acknowledged_episodes(published)
    missed = len(missed_episodes(published, alert_ids))
    explained = set().union(*(e.alert_ids for e in published.episodes))
    per_episode = sum(max(0, len(e.alert_ids & alert_ids) - 1) for e in published.episodes)
    return len(must), missed, len(alert_ids - explained) + per_episode


def _seqs_in(raw: bytes) -> list[int]:
    many = _SEQS.search(raw)
    if many:
        return [int(s) for s in many.group(1).split(b",") if s.strip()]
    return [int(m) for m in _SEQ.findall(raw)]


def settled(published: PublishedSet, stored: Stored) -> bool:
    return set(published.expected) <= stored.accounted()


def count_run(
    scenario: str, published: PublishedSet, stored: Stored, alert_ids: set[str]
) -> RunCount:
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
    episodes, missed, extra = episodes_alerted(published, alert_ids)
    without = missed_episodes(published, alert_ids)
    if without:
        notes.append(f"episodes without their alert (device seqs): {[e.seqs for e in without][:5]}")
    if extra:
        notes.append(f"{extra} alerts beyond one per episode")
    return RunCount(
        scenario=scenario,
        published=len(published.expected),
        acknowledged=len(acknowledged),
        stored=len(stored.readings),
        dead_lettered=len(stored.dead_letters),
        lost=len(missing),
        duplicates=duplicates,
        misrouted=misrouted,
        episodes=episodes,
        missed_alerts=missed,
        extra_alerts=extra,
        missing=missing[:20],
        missed_episodes=without[:5],
        notes=notes,
    )
