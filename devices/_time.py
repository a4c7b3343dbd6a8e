"""Time as integer microseconds since the Unix epoch (UTC): exact, cheap, JSON-friendly."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

__all__ = ["datetime_to_us", "now_us", "us_to_datetime"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)  # built once: a timedelta per call was half the cost


def now_us() -> int:
    return time.time_ns() // 1000


def datetime_to_us(value: datetime) -> int:
    return (value - _EPOCH) // _ONE_US


def us_to_datetime(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)
