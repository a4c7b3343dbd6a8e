"""Times and durations given on the command line."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from veille.errors import ConfigurationError

__all__ = ["parse_duration", "parse_time"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``72h``, ``30m``, ``7d``, ``90s``."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ConfigurationError(f"{text!r} is not a duration; write e.g. 72h, 30m or 7d")
    return timedelta(seconds=float(match[1]) * _UNIT_S[match[2]])


def parse_time(text: str) -> datetime:
    """An RFC 3339 time with its offset (``Z`` accepted): a time without one is ambiguous."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigurationError(
            f"{text!r} is not an RFC 3339 time, e.g. 2026-12-10T12:00:00Z"
        ) from exc
    if value.tzinfo is None:
        raise ConfigurationError(f"{text!r} has no UTC offset; add Z or +01:00")
    return value
