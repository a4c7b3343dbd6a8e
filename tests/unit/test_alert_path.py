"""The alert-path bench splits each alert's latency into stages that add up."""

from __future__ import annotations

from bench._alert_path import STAGES, StageTimes, stage_latencies

T = 1_790_000_000_000_000


def test_stages_follow_one_alert_and_add_up_to_the_whole() -> None:
    key = ("p-7", T)
    times = StageTimes(
        row={key: T + 480_000, ("p-9", T): T + 1},  # p-9 was never seen on Kafka: not traced
        received={key: T + 5_000},
        raw={key: T + 60_000},
        readings={key: T + 200_000},
        alert={key: T + 430_000},
    )
    assert times.traced() == [key]
    stages = stage_latencies(times)
    assert [name for name, _, _ in STAGES] == list(stages)
    assert stages["published -> gateway received"] == [5.0]
    assert stages["received -> raw record"] == [55.0]
    assert stages["raw record -> readings record"] == [140.0]
    assert stages["readings record -> alert record"] == [230.0]
    assert stages["alert record -> alert event row"] == [50.0]
    parts = sum(ms[0] for name, ms in stages.items() if not name.startswith("published -> alert"))
    assert stages["published -> alert event row"] == [parts] == [480.0]
