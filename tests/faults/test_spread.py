"""The ``scale`` scenario's spread check, on log lines as aiokafka writes them."""

from __future__ import annotations

from aiokafka.structs import TopicPartition

from tests.faults.harness.groups import GroupSpread, input_topics, last_assignment

RAW = "veille.readings.raw"


def _assigned(group: str, *partitions: tuple[str, int]) -> str:
    tps = {TopicPartition(topic, p) for topic, p in partitions}
    return (
        "2026-12-04 12:00:00,000 INFO aiokafka.consumer.group_coordinator: "
        f"Setting newly assigned partitions {tps} for group {group}\n"
    )


def _spread(owned: dict[str, set[tuple[str, int]] | None], members: int = 0) -> GroupSpread:
    expected = frozenset((RAW, p) for p in range(4))
    return GroupSpread("veille-validate", "Stable", members or len(owned), owned, expected)


def test_the_last_assignment_of_the_group_counts() -> None:
    log = (
        _assigned("veille-validate", (RAW, 0), (RAW, 1), (RAW, 2), (RAW, 3))
        + _assigned("veille-detect", ("veille.readings", 0))
        + _assigned("veille-validate", (RAW, 1), (RAW, 3))
    )
    assert last_assignment(log, "veille-validate") == {(RAW, 1), (RAW, 3)}
    assert last_assignment(log, "veille-detect") == {("veille.readings", 0)}
    assert last_assignment(log, "veille-sink") is None
    assert last_assignment("Setting newly assigned partitions set() for group g\n", "g") == set()


def test_the_groups_inputs_follow_the_topic_settings() -> None:
    inputs = input_topics({"VEILLE_TOPIC_RAW": "t.raw"})
    assert inputs["veille-validate"] == ("t.raw",)
    assert inputs["veille-sink"] == ("veille.readings", "veille.readings.dlq")
    assert inputs["veille-sink-alerts"] == ("veille.alerts",)


def test_every_member_owning_a_share_of_every_partition_is_spread() -> None:
    spread = _spread({"worker-2": {(RAW, 0), (RAW, 2)}, "worker-3": {(RAW, 1), (RAW, 3)}})
    assert spread.problems() == []
    assert "worker-2 readings.raw[0, 2]" in spread.line()


def test_an_idle_member_a_stale_line_or_a_missing_member_is_not() -> None:
    idle = _spread({"a": {(RAW, p) for p in range(4)}, "b": set()})
    assert idle.problems() == ["b owns no partition of veille-validate's input"]
    stale = _spread({"a": {(RAW, 0), (RAW, 1)}, "b": {(RAW, 1), (RAW, 2)}})
    assert stale.problems() == [
        f"veille-validate: partitions in two members' assignments {[(RAW, 1)]}",
        f"veille-validate: partitions nobody owns {[(RAW, 3)]}",
    ]
    not_joined = _spread({"a": {(RAW, p) for p in range(4)}, "b": None}, members=1)
    assert "Kafka reports veille-validate Stable with 1 members, 2 started" in not_joined.problems()
