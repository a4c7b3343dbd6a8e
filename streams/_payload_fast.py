"""Well-formed payloads read without building a pydantic model per reading.

pydantic (``devices._payloads``) stays the contract: this reader accepts only payloads that
plainly satisfy it (exact key sets, exact JSON types, RFC 3339 times with at most microsecond
digits and a year far from the calendar's ends) and returns None for anything else, which then
goes through pydantic and gets pydantic's exact reasons. ``tests/unit/test_payload_fast.py``
holds both readers to the same readings on generated payloads, hostile ones included.
"""

from __future__ import annotations

import re
from math import isfinite
from typing import Any, Final, NamedTuple

from ._plain_time import plain_time_us

__all__ = ["PlainReading", "read_plainly"]

# A reading holds four keys, and "value" and "status" when sent:
_REQUIRED_COUNT: Final = 4  # "seq", "metric", "unit", "measured_at"
_BATCH_KEYS: Final = frozenset({"v", "device_id", "readings"})
_MAX_READINGS: Final = 1000  # devices._payloads.MAX_READINGS_PER_MESSAGE
_DEVICE_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class PlainReading(NamedTuple):
    """One reading as the payload model would give it, time in UTC microseconds."""

    seq: int
    metric: str
    value: float | None
    unit: str
    measured_at_us: int
    no_signal_status: bool


def _reading(obj: Any, head_keys: int = 0) -> PlainReading | None:
    """``head_keys``: how many keys ``obj`` holds besides the reading's, already checked (a
    single-reading payload's "v" and "device_id"), so that it is read without a copy."""
    if type(obj) is not dict:
        return None
    get = obj.get
    seq = get("seq")
    metric = get("metric")
    unit = get("unit")
    measured_at = get("measured_at")
    value = get("value")
    status = get("status", "ok")
    # A missing required key reads as None, which the type checks below refuse: the key set
    # is right when nothing else is there (two set comparisons cost more than this).
    if len(obj) != _REQUIRED_COUNT + head_keys + ("value" in obj) + ("status" in obj):
        return None
    if type(seq) is not int or not 0 <= seq < 2**63:
        return None
    if type(metric) is not str or not 0 < len(metric) <= 64:
        return None
    if type(unit) is not str or not 0 < len(unit) <= 16:
        return None
    if type(value) is int:
        value = float(value)
    elif value is not None and (type(value) is not float or not isfinite(value)):
        return None
    if status == "ok" and type(status) is str:
        if value is None:
            return None
        no_signal = False
    elif status == "no_signal" and type(status) is str:
        if value not in (None, 0):
            return None
        no_signal = True
    else:
        return None
    if type(measured_at) is not str:
        return None
    measured_us = plain_time_us(measured_at)
    if measured_us is None:
        return None
    # tuple.__new__ directly: the NamedTuple's own __new__ is a Python call, a tenth of this.
    return tuple.__new__(PlainReading, (seq, metric, value, unit, measured_us, no_signal))


def read_plainly(payload: Any) -> tuple[str, list[PlainReading]] | None:
    """``(device_id, readings)`` of a plainly well-formed v1 payload, else None."""
    if type(payload) is not dict:
        return None
    keys = payload.keys()
    version = payload.get("v")
    device_id = payload.get("device_id")
    if type(version) is not int or version != 1:
        return None
    if type(device_id) is not str or _DEVICE_ID.fullmatch(device_id) is None:
        return None
    if "readings" in keys:
        if keys != _BATCH_KEYS:
            return None
        items = payload["readings"]
        if type(items) is not list or not 0 < len(items) <= _MAX_READINGS:
            return None
        readings: list[PlainReading] = []
        for item in items:
            reading = _reading(item)
            if reading is None:
                return None
            readings.append(reading)
        return device_id, readings
    single = _reading(payload, head_keys=2)  # "v" and "device_id", both checked above
    return None if single is None else (device_id, [single])
