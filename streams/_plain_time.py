"""RFC 3339 times of plain payloads -> UTC microseconds, without a datetime per reading.

The readings of one upload share their date, hour, minute and offset, so the exact reading
(``datetime.fromisoformat``, then :func:`devices.datetime_to_us`) is done once per minute and
cached; the seconds, the fraction and the offset of each reading are then table look-ups and
one ``int``. A time in any other spelling takes the exact reading itself, so for every text
the answer is the exact reading's (``tests/unit/test_plain_time.py`` holds them together).
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Final

from devices import datetime_to_us

__all__ = ["plain_time_us"]

# What the fast payload reader takes; pydantic judges the rest ("t", "z", a space, 7+ digits).
_PLAIN_TIME: Final = re.compile(
    r"([0-9]{4})-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_US_PER_S: Final = 1_000_000
_MINUTE_END: Final = 16  # "YYYY-MM-DDTHH:MM"
_SECONDS_END: Final = 19  # ":SS"; 60 (a leap second) is not one fromisoformat takes
_SECONDS: Final = {f":{s:02d}": s * _US_PER_S for s in range(60)}
_WHOLE_UTC_SECONDS: Final = {f"{second}Z": us for second, us in _SECONDS.items()}
# The offsets in use in the world (whole quarters of an hour); "+01:60" and its like, which
# fromisoformat also takes, go the exact way.
_ZONES: Final = {"Z": 0} | {
    f"{sign}{h:02d}:{m:02d}": (1 if sign == "+" else -1) * (h * 3600 + m * 60) * _US_PER_S
    for sign in "+-"
    for h in range(24)
    for m in (0, 15, 30, 45)
}
_FRACTION_SCALE: Final = {n: 10 ** (6 - n) for n in range(1, 7)}  # ".5" is 500,000 us


def plain_time_us(text: str) -> int | None:
    """UTC microseconds of a time the fast reader takes (``_PLAIN_TIME``, years 2 to 9998,
    a real date and time of day, an offset under 24 h), else None."""
    common = _common_us(text)
    return common if common is not None else _exact_us(text)


def _exact_us(text: str) -> int | None:
    match = _PLAIN_TIME.fullmatch(text)
    if match is None or not 2 <= int(match.group(1)) <= 9998:
        return None
    try:
        return datetime_to_us(datetime.fromisoformat(text))
    except ValueError:  # no such day or hour, an offset of 24 h or more
        return None


@lru_cache(maxsize=4096)
def _minute_us(minute: str) -> int | None:
    """``YYYY-MM-DDTHH:MM`` read as UTC, or None when the exact reading refuses it.

    A pure function of its text, so a cached answer is always the right one; the bound keeps
    memory fixed whatever devices send (4096 minutes: almost three days of live uploads).
    """
    return _exact_us(minute + ":00Z")


def _common_us(text: str) -> int | None:
    """``YYYY-MM-DDTHH:MM:SS[.f]<zone>`` by the tables, or None to take the exact way."""
    whole_utc = _WHOLE_UTC_SECONDS.get(text[_MINUTE_END:])
    if whole_utc is not None:  # ":SSZ", what most devices send: one look-up for the rest
        minute = _minute_us(text[:_MINUTE_END])
        return None if minute is None else minute + whole_utc
    if text[-1:] == "Z":
        offset: int | None = 0
        end = len(text) - 1
    else:
        offset = _ZONES.get(text[-6:])
        end = len(text) - 6
    second = _SECONDS.get(text[_MINUTE_END:_SECONDS_END])
    if offset is None or second is None or end < _SECONDS_END:
        return None
    if end == _SECONDS_END:
        fraction = 0
    else:
        digits = text[_SECONDS_END + 1 : end]
        scale = _FRACTION_SCALE.get(len(digits))
        if (
            text[_SECONDS_END] != "."
            or scale is None
            or not (digits.isascii() and digits.isdigit())
        ):
            return None
        fraction = int(digits) * scale
    minute = _minute_us(text[:_MINUTE_END])
    return None if minute is None else minute + second + fraction - offset
