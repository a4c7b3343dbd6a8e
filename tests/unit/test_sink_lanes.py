"""The sink reads alert events in a lane of their own, and is ready only while every lane is."""

from __future__ import annotations

import pytest

from streams._sink import ALERTS_GROUP_ID, GROUP_ID, LANES, SinkCounters, sink_lanes
from veille.settings import Settings


def test_alert_events_have_their_own_group_and_a_shorter_wait() -> None:
    settings = Settings(sink_fetch_max_wait_ms=250, sink_alerts_fetch_max_wait_ms=30)
    bulk, alerts = sink_lanes(settings)
    topics = settings.topics
    assert (bulk.group_id, bulk.topics, bulk.fetch_max_wait_ms) == (
        GROUP_ID, (topics.readings, topics.dead_letters), 250,
    )  # fmt: skip
    assert (alerts.group_id, alerts.topics, alerts.fetch_max_wait_ms) == (
        ALERTS_GROUP_ID, (topics.alerts,), 30,
    )  # fmt: skip
    assert len(sink_lanes(settings)) == LANES


def test_every_topic_is_read_by_exactly_one_lane() -> None:
    topics = Settings().topics
    read = [t for lane in sink_lanes(Settings()) for t in lane.topics]
    assert sorted(read) == sorted([topics.readings, topics.alerts, topics.dead_letters])


def test_polling_counts_from_the_oldest_lane(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([100.0, 250.0, 300.0])
    monkeypatch.setattr("streams._sink.time.monotonic", lambda: next(clock))
    counters = SinkCounters()
    counters.polled(GROUP_ID)
    assert counters.polled_at == 0.0  # the alert lane never polled: not polling yet
    counters.polled(ALERTS_GROUP_ID)
    assert counters.polled_at == 100.0  # a readings lane stuck since 100 shows
    counters.polled(GROUP_ID)
    assert counters.polled_at == 250.0


def test_one_failing_lane_makes_the_sink_not_ready() -> None:
    counters = SinkCounters()
    assert not counters.database_failing
    counters.failing.add(GROUP_ID)
    counters.failing.discard(ALERTS_GROUP_ID)  # the other lane wrote meanwhile
    assert counters.database_failing
    counters.failing.discard(GROUP_ID)
    assert not counters.database_failing
