"""A step after one that left a backlog waits for it to drain first."""

from __future__ import annotations

from bench._progress import PipelineProgress
from bench._sustain import settled


def _p(stored: int, fetched: int = 10, detected: int = 10) -> PipelineProgress:
    return PipelineProgress(stored, fetched, detected)


def test_quiet_for_long_enough_with_the_detector_caught_up_is_settled() -> None:
    history = [(0.0, _p(100)), (1.0, _p(100)), (2.0, _p(100))]
    assert settled(history, quiet_s=2.0)


def test_still_storing_or_too_short_a_look_is_not() -> None:
    assert not settled([(0.0, _p(90)), (1.0, _p(95)), (2.0, _p(100))], quiet_s=2.0)
    assert not settled([(0.0, _p(100)), (1.0, _p(100))], quiet_s=2.0)
    assert not settled([], quiet_s=2.0)
    # stored moved before the quiet window: what counts is the last two seconds
    assert settled([(0.0, _p(90)), (1.0, _p(100)), (2.0, _p(100)), (3.0, _p(100))], 2.0)


def test_a_detector_still_behind_is_not_settled() -> None:
    history = [(0.0, _p(100, 12, 10)), (1.0, _p(100, 12, 10)), (2.0, _p(100, 12, 10))]
    assert not settled(history, quiet_s=2.0)
