"""Short form of every fault scenario: nothing acknowledged is lost, nothing lands twice.

One run each, with stalls of a few seconds (``make faults`` runs the full durations and
repeats). Each run builds its own stack, so a scenario that kills or stops a service cannot
disturb another.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.harness.scenarios import SCENARIOS, SHORT, run_scenario

pytestmark = [pytest.mark.slow, pytest.mark.faults]


@pytest.mark.timeout(240)  # a run takes 20 to 60 s; a failing one gives up after 60 s more
@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_acknowledged_readings_survive(name: str, tmp_path: Path) -> None:
    result = await run_scenario(SCENARIOS[name], SHORT, tmp_path)

    assert result.acknowledged == result.published, result  # every device saw its PUBACKs
    assert result.lost == 0, f"acknowledged but not stored: {result.missing} ({result.notes})"
    assert result.duplicates == 0, result
    assert result.misrouted == 0, result
    assert result.published == result.stored + result.dead_lettered, result
    assert result.dead_lettered > 0, "the stream's invalid readings must reach the dead letters"
    assert result.drain_problems == [], result.drain_problems
    assert result.problems == [], f"the scenario's own checks: {result.problems} ({result.notes})"
    assert result.episodes > 0, "the stream's tachycardia episodes must be acknowledged"
    assert result.missed_alerts == 0, f"episodes the detectors never alerted on: {result.notes}"
    assert result.extra_alerts == 0, f"alerts no episode explains: {result.notes}"
