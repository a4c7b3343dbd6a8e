"""Well-formed payloads read without building a pydantic model per reading.

pydantic (``devices._payloads``) stays the contract: this reader accepts only payloads that
plainly satisfy it (exact key sets, exact JSON types, RFC 3339 times with at most microsecond
digits and a year far from the calendar's ends) and returns None for anything else, which then
goes through pydantic and gets pydantic's exact reasons. ``tests/unit/test_payload_fast.py``
holds both readers to the same readings on generated payloads, hostile ones included.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any, Final, NamedTuple

from devices import datetime_to_us

__all__ = ["PlainReading", "read_plainly"]

_READING_KEYS: Final = frozenset({"seq", "metric", "value", "unit", "measured_at", "status"})
_READING_REQUIRED: Final = frozenset({"seq", "metric", "unit", "measured_at"})
_SINGLE_KEYS: Final = _READING_KEYS | {"v", "device_id"}
_SINGLE_REQUIRED: Final = _READING_REQUIRED | {"v", "device_id"}
_BATCH_KEYS: Final = frozenset({"v", "device_id", "readings"})
_MAX_READINGS: Final = 1000  # devices._payloads.MAX_READINGS_PER_MESSAGE
_DEVICE_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_PLAIN_TIME: Final = re.compile(
    r"([0-9]{4})-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})"
)


class PlainReading(NamedTuple):
    """One reading as the payload model would give it, time in UTC microseconds."""

    seq: int
    metric: str
    value: float | None
    unit: str
    measured_at_us: int
    no_signal_status: bool


def _text(value: Any, longest: int) -> bool:
    return type(value) is str and 0 < len(value) <= longest


def _reading(obj: Any) -> PlainReading | None:
    if type(obj) is not dict:
        return None
    keys = obj.keys()
    if not (_READING_REQUIRED <= keys <= _READING_KEYS):
        return None
    seq = obj["seq"]
    metric = obj["metric"]
    unit = obj["unit"]
    if type(seq) is not int or not 0 <= seq < 2**63:
        return None
    if not _text(metric, 64) or not _text(unit, 16):
        return None
    value = obj.get("value")
    if value is not None:
        if type(value) is int:
            value = float(value)
        elif type(value) is not float or not math.isfinite(value):
            return None
    status = obj.get("status", "ok")
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
    measured_us = _measured_us(obj["measured_at"])
    if measured_us is None:
        return None
    return PlainReading(seq, metric, value, unit, measured_us, no_signal)


def _measured_us(text: Any) -> int | None:
    if type(text) is not str:
        return None
    match = _PLAIN_TIME.fullmatch(text)
    if match is None or not 2 <= int(match.group(1)) <= 9998:
        return None
    try:
        return datetime_to_us(datetime.fromisoformat(text))
    except ValueError:  # no such day or hour, an offset of 24 h or more
        return None


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
    if not (_SINGLE_REQUIRED <= keys <= _SINGLE_KEYS):
        return None
    single = _reading({k: v for k, v in payload.items() if k != "v" and k != "device_id"})
    return None if single is None else (device_id, [single])
