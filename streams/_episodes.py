"""The recent alert episodes of each rule, so a late reading cannot reopen a closed one.

Kept in the detector state as one short text per rule (scalars only, so it fits the Faust
table): ``"start-end,start-end"`` in microseconds, newest last, at most
:data:`MAX_EPISODES`. The validator refuses readings older than ``VEILLE_MAX_AGE_S``, so
a handful of episodes covers every reading that can still arrive.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_EPISODES", "Episode", "episodes", "overlaps", "remember_episode"]

MAX_EPISODES: Final = 8
Episode = tuple[int, int | None]  # start and end (None: still open)
State = dict[str, dict[str, int | float | str | None]]


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
