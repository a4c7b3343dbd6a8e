"""``LiveRun``: a simulation handed out as real time passes, never dated in the future."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from devices import datetime_to_us
from devices.simulator import LiveRun, Simulation, SimulationConfig

NOW = datetime(2026, 3, 2, 9, 30, 15, 250_000, tzinfo=UTC)


def _config(minutes: float = 10) -> SimulationConfig:
    return SimulationConfig(patients=4, minutes=minutes, seed=3)


def test_every_delivery_is_handed_out_once_in_send_order() -> None:
    live = LiveRun(_config(), now=NOW, speed=30)
    handed = []
    for tick in range(0, 21):
        handed += live.due(tick)
    handed += live.rest()
    assert live.finished
    expected = list(Simulation(_config(), start=live.simulation.start).deliveries())
    assert handed == expected
    sends = [d.send_at_us for d in handed]
    assert sends == sorted(sends)


def test_due_follows_the_clock_at_the_given_speed() -> None:
    live = LiveRun(_config(), now=NOW, speed=30)
    start = live.simulation.start_us
    first = live.due(5.0)  # 5 real seconds are 150 simulated ones
    assert first and all(d.send_at_us <= start + 150_000_000 for d in first)
    later = live.due(5.0)
    assert later == []  # nothing is handed out twice
    assert all(d.send_at_us > start + 150_000_000 for d in live.due(6.0))


def test_a_faster_run_ends_now_and_a_real_time_run_starts_now() -> None:
    fast = LiveRun(_config(30), now=NOW, speed=30)
    assert fast.real_duration_s == pytest.approx(60)
    # 30 simulated minutes in one real minute: it starts 29 minutes early, on a whole second.
    assert fast.simulation.start_us == (datetime_to_us(NOW) - 29 * 60_000_000) // 10**6 * 10**6
    measured_by_the_end = fast.simulation.end_us
    assert measured_by_the_end <= datetime_to_us(NOW) + fast.real_duration_s * 1e6
    real_time = LiveRun(_config(), now=NOW, speed=1)
    assert real_time.simulation.start == NOW.replace(microsecond=0)


def test_slower_than_real_time_is_refused() -> None:
    with pytest.raises(ValueError, match="speed >= 1"):
        LiveRun(_config(), now=NOW, speed=0.5)
