"""Alert episodes: the persistence and hysteresis step every rule shares, and the recent
episodes of each rule, so a late reading cannot reopen a closed one.

:func:`advance` takes one reading through a rule's episode: ``breaches`` readings beyond the
limit (from ``start_us``) open it once ``confirmed``, and a reading between the limit and
clear-at pauses that count instead of restarting it; once open, ``clear_count`` consecutive
readings back within the band close it. The caller names the alert on ``OPENED`` and calls
:func:`close` on ``RESOLVED``.

Closed episodes are kept in the detector state as one short text per rule (scalars only,
so it fits the Faust table): ``"start-end,start-end"`` in microseconds, newest last, at
most :data:`MAX_EPISODES`. The validator refuses readings older than ``VEILLE_MAX_AGE_S``, so
a handful of episodes covers every reading that can still arrive.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Final

__all__ = [
    "MAX_EPISODES",
    "Episode",
    "RuleState",
    "Transition",
    "advance",
    "close",
    "episodes",
    "new_rule_state",
    "overlaps",
    "remember_episode",
    "rule_state",
]

MAX_EPISODES: Final = 8
Episode = tuple[int, int | None]  # start and end (None: still open)
State = dict[str, dict[str, int | float | str | None]]
RuleState = dict[str, int | float | str | None]
"""``breaches``, ``clears``, ``start_us`` and ``alert`` (None while no episode is open)."""


class Transition(Enum):
    OPENED = "opened"
    RESOLVED = "resolved"


def new_rule_state() -> RuleState:
    return {"breaches": 0, "clears": 0, "start_us": None, "alert": None}


def rule_state(state: State, rule_id: str) -> RuleState:
    """The live episode of ``rule_id``, created on first use (``setdefault`` would build a
    fresh dict for every reading of every rule only to drop it)."""
    key = f"r:{rule_id}"
    s = state.get(key)
    if s is None:
        s = state[key] = new_rule_state()
    return s


def advance(
    s: RuleState,
    *,
    breached: bool,
    cleared: bool,
    at_us: int,
    confirmed: Callable[[int, int], bool],
    clear_count: int,
) -> Transition | None:
    """One reading through the episode in ``s``. ``confirmed(breaches, held_us)`` says
    whether the readings beyond the limit so far make an episode."""
    if s["alert"] is None:
        if breached:
            breaches = int(s["breaches"] or 0)
            if breaches == 0:
                s["start_us"] = at_us
            s["breaches"] = breaches + 1
            start = s["start_us"]
            if confirmed(breaches + 1, at_us - int(start) if start is not None else 0):
                s["clears"] = 0
                return Transition.OPENED
        elif cleared:
            # Between the limit and clear-at the episode neither grows nor ends: a CGM at
            # 2.8, 3.1, 2.7 mmol/L is one hypoglycaemia, not two false starts.
            s["breaches"], s["start_us"] = 0, None
        return None
    if cleared:
        clears = int(s["clears"] or 0) + 1
        s["clears"] = clears
        if clears >= clear_count:
            return Transition.RESOLVED
    else:
        s["clears"] = 0
    return None


def close(s: RuleState) -> tuple[str, int]:
    """End the open episode in ``s``; returns its alert id and start."""
    closed = (str(s["alert"]), int(s["start_us"] or 0))
    s.update(new_rule_state())
    return closed


def remember_episode(state: State, rule_id: str, start_us: int, end_us: int) -> None:
    """Record a closed episode of ``rule_id``."""
    slot = state.setdefault(f"e:{rule_id}", {"past": ""})
    past = [p for p in str(slot["past"] or "").split(",") if p]
    past.append(f"{start_us}-{end_us}")
    slot["past"] = ",".join(past[-MAX_EPISODES:])


def episodes(state: State, rule_id: str) -> list[Episode]:
    """Closed episodes, then the open one (if any) of ``rule_id``."""
    found: list[Episode] = []
    slot = state.get(f"e:{rule_id}")
    for part in str(slot["past"] or "").split(",") if slot is not None else ():
        if part:
            start, end = part.split("-")
            found.append((int(start), int(end)))
    current = state.get(f"r:{rule_id}")
    if current is not None and current.get("alert") is not None:
        found.append((int(current["start_us"] or 0), None))
    return found


def overlaps(known: list[Episode], start_us: int, end_us: int) -> bool:
    """Whether ``[start_us, end_us]`` touches any known episode."""
    return any(start_us <= (e if e is not None else end_us) and s <= end_us for s, e in known)
