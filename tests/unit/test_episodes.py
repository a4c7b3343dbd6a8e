"""The episode step every rule shares: persistence to open, a dead band that neither grows nor
ends an episode, hysteresis to close; and the memory of closed episodes."""

from __future__ import annotations

from streams._episodes import (
    Transition,
    advance,
    close,
    episodes,
    new_rule_state,
    overlaps,
    remember_episode,
)

LIMIT, CLEAR_AT = 130.0, 125.0  # heart_rate_high's band


def _run(values: list[float], *, persistence: int = 3) -> list[tuple[int, Transition]]:
    """Feed one reading per second; the transitions with the index of their reading."""
    s = new_rule_state()
    seen = []
    for i, value in enumerate(values):
        transition = advance(
            s,
            breached=value > LIMIT,
            cleared=value <= CLEAR_AT,
            at_us=i * 1_000_000,
            confirmed=lambda n, _held: n >= persistence,
            clear_count=persistence,
        )
        if transition is Transition.OPENED:
            s["alert"] = f"alert-{s['start_us']}"
        elif transition is Transition.RESOLVED:
            close(s)
        if transition is not None:
            seen.append((i, transition))
    return seen


def test_persistence_opens_on_the_third_reading_beyond_the_limit() -> None:
    assert _run([100, 140, 140, 140]) == [(3, Transition.OPENED)]


def test_a_reading_back_within_the_band_restarts_the_count() -> None:
    assert _run([140, 140, 100, 140, 140]) == []


def test_the_dead_band_pauses_an_episode_in_the_making() -> None:
    # 128 is above clear-at but not beyond the limit: the count pauses, it does not restart.
    assert _run([140, 128, 140, 140]) == [(3, Transition.OPENED)]
    # Once open, a reading above clear-at restarts the count towards closing it.
    assert _run([140, 140, 140, 120, 128, 120, 120, 120]) == [
        (2, Transition.OPENED),
        (7, Transition.RESOLVED),
    ]


def test_hysteresis_closes_after_as_many_readings_back_within_the_band() -> None:
    assert _run([140, 140, 140, 120, 120, 140, 120, 120, 120]) == [
        (2, Transition.OPENED),
        (8, Transition.RESOLVED),
    ]


def test_the_start_is_the_first_reading_beyond_the_limit_and_close_resets() -> None:
    s = new_rule_state()
    for i, value in enumerate([100, 140, 140, 140]):
        transition = advance(s, breached=value > LIMIT, cleared=value <= CLEAR_AT,
                             at_us=i, confirmed=lambda n, _h: n >= 3, clear_count=3)  # fmt: skip
    assert transition is Transition.OPENED
    assert s["start_us"] == 1
    s["alert"] = "a-1"
    assert close(s) == ("a-1", 1)
    assert s == new_rule_state()


def test_a_hold_confirms_by_duration_not_by_count() -> None:
    s = new_rule_state()
    hold_us = 15 * 60 * 1_000_000
    transitions = [
        advance(s, breached=True, cleared=False, at_us=t * 60 * 1_000_000,
                confirmed=lambda n, held: n >= 3 and held >= hold_us, clear_count=3)
        for t in range(0, 20, 5)
    ]  # fmt: skip
    assert transitions == [None, None, None, Transition.OPENED]  # at 15 min, 4th reading


def test_closed_episodes_are_remembered_and_overlaps_found() -> None:
    state: dict[str, dict[str, int | float | str | None]] = {}
    remember_episode(state, "spo2_low", 100, 200)
    assert episodes(state, "spo2_low") == [(100, 200)]
    assert overlaps(episodes(state, "spo2_low"), 150, 300)
    assert not overlaps(episodes(state, "spo2_low"), 201, 300)
