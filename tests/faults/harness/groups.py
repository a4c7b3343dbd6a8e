"""Which partitions each member of a consumer group owns: the ``scale`` scenario's spread check.

Membership comes from Kafka's DescribeGroups (aiokafka ``describe_consumer_groups``): the
group's state and how many members it has, one group per request. Tansu 0.6 answers that
request but leaves every member's assignment empty (``member_assignment=b''``,
``protocol=''``), and garbles every group after the first when a request names several
(checked on the bundled broker), so what each member owns is read from the member's own log: aiokafka logs
``Setting newly assigned partitions {...} for group G`` at every assignment, in the Faust
workers and in the sink alike, and the last such line is the member's current assignment.

A spread is accepted when Kafka reports the group stable with as many members as were
started, the members' last assignments cover every partition of the group's input topics
exactly once, and every member owns at least one of them; and when the same holds one poll
later (a member still on the previous generation's line would break the cover).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from streams.runtime import APP_IDS, SINK_ALERTS_GROUP_ID, SINK_GROUP_ID
from veille.settings import TopicNames

_ASSIGNED = re.compile(r"Setting newly assigned partitions (.*) for group (\S+)")
_PARTITION = re.compile(r"TopicPartition\(topic='([^']+)', partition=(\d+)\)")
POLL_S = 1.0  # a rebalance takes seconds (Tansu holds joins for half the session timeout)

Partition = tuple[str, int]


def input_topics(env: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """Group -> the topics whose partitions it shares out (changelogs and standbys aside)."""
    names = TopicNames()

    def topic(field: str) -> str:
        default: str = getattr(names, field)
        return env.get(f"VEILLE_TOPIC_{field.upper()}", default)

    return {
        APP_IDS["validate"]: (topic("raw"),),
        APP_IDS["detect"]: (topic("readings"), topic("alerts")),  # co-partitioned by patient
        SINK_GROUP_ID: (topic("readings"), topic("dead_letters")),
        SINK_ALERTS_GROUP_ID: (topic("alerts"),),
    }


def last_assignment(log_text: str, group: str) -> set[Partition] | None:
    """The partitions of the last assignment this log shows for ``group``; None before any."""
    found = [m[1] for m in _ASSIGNED.finditer(log_text) if m[2] == group]
    if not found:
        return None
    return {(topic, int(p)) for topic, p in _PARTITION.findall(found[-1])}


@dataclass(frozen=True, slots=True)
class GroupSpread:
    """One observation of a group: Kafka's view and each member's last logged assignment."""

    group: str
    state: str  # DescribeGroups' group state: Stable, PreparingRebalance, ...
    kafka_members: int
    owned: dict[str, set[Partition] | None]  # member (component name) -> its input partitions
    expected: frozenset[Partition]  # every partition of the group's input topics

    def problems(self) -> list[str]:
        out = []
        if self.state != "Stable" or self.kafka_members != len(self.owned):
            out.append(
                f"Kafka reports {self.group} {self.state} with {self.kafka_members} members, "
                f"{len(self.owned)} started"
            )
        for member, owned in self.owned.items():
            if not owned:
                out.append(f"{member} owns no partition of {self.group}'s input")
        counts: dict[Partition, int] = {}
        for owned in self.owned.values():
            for partition in owned or ():
                counts[partition] = counts.get(partition, 0) + 1
        twice = sorted(p for p, n in counts.items() if n > 1)
        unowned = sorted(self.expected - counts.keys())
        if twice:
            out.append(f"{self.group}: partitions in two members' assignments {twice}")
        if unowned:
            out.append(f"{self.group}: partitions nobody owns {unowned}")
        return out

    def line(self) -> str:
        def short(owned: set[Partition] | None) -> str:
            if owned is None:
                return "no assignment yet"
            per_topic: dict[str, list[int]] = {}
            for topic, p in sorted(owned):
                per_topic.setdefault(topic, []).append(p)
            return " ".join(f"{t.removeprefix('veille.')}{ps}" for t, ps in per_topic.items())

        members = ", ".join(f"{m} {short(o)}" for m, o in self.owned.items())
        count = f"{self.kafka_members} member{'s' if self.kafka_members != 1 else ''}"
        return f"{self.group} ({count}, {self.state}): {members}"


async def describe(bootstrap: str, groups: Sequence[str]) -> dict[str, tuple[str, int]]:
    """Group -> (state, member count), from DescribeGroups."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        out: dict[str, tuple[str, int]] = {}
        for wanted in groups:  # one per request: Tansu 0.6 garbles the second group of a request
            for response in await admin.describe_consumer_groups([wanted]):
                for error_code, group, state, _ptype, _protocol, members, *_ in response.groups:
                    if error_code != 0 or group != wanted:
                        raise RuntimeError(f"DescribeGroups {wanted}: {group} error {error_code}")
                    out[group] = (state, len(members))
        return out
    finally:
        await admin.close()


def observe(
    bootstrap: str,
    members: Mapping[str, Mapping[str, Path]],
    partitions: int,
    env: Mapping[str, str],
) -> list[GroupSpread]:
    """``members``: group -> {component name: its log}; one observation of each group."""
    kafka = asyncio.run(describe(bootstrap, list(members)))
    inputs = input_topics(env)
    spreads = []
    for group, logs in members.items():
        topics = inputs[group]
        owned = {}
        for name, log in logs.items():
            text = log.read_text(errors="replace") if log.exists() else ""
            assigned = last_assignment(text, group)
            owned[name] = None if assigned is None else {p for p in assigned if p[0] in topics}
        state, count = kafka.get(group, ("Unknown", 0))
        expected = frozenset((t, p) for t in topics for p in range(partitions))
        spreads.append(GroupSpread(group, state, count, owned, expected))
    return spreads


def wait_spread(
    bootstrap: str,
    members: Mapping[str, Mapping[str, Path]],
    partitions: int,
    env: Mapping[str, str],
    *,
    timeout_s: float,
) -> tuple[list[GroupSpread], list[str]]:
    """Until two polls in a row find every group spread (see the module's docstring), or the
    deadline; returns the last observation and what was wrong with it (empty when spread)."""
    deadline = time.monotonic() + timeout_s
    clean_polls = 0
    while True:
        spreads = observe(bootstrap, members, partitions, env)
        problems = [p for s in spreads for p in s.problems()]
        clean_polls = 0 if problems else clean_polls + 1
        if clean_polls == 2 or time.monotonic() > deadline:
            return spreads, problems
        time.sleep(POLL_S)
