"""Payloads the pipeline must refuse, sent in every demo to show the dead-letter path."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

import orjson

__all__ = ["BAD_MESSAGES", "bad_payload"]

BAD_MESSAGES: Final = (
    # (real seconds after publishing starts, what is wrong): one dead letter each.
    (2.0, "malformed"),
    (3.0, "unknown_metric"),
    (4.0, "impossible_unit"),
)


def bad_payload(kind: str, device_id: str) -> bytes:
    """Each carries the current time: identical bytes on one topic are one dead letter."""
    at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    if kind == "malformed":
        return f'{{"v": 1, "device_id": "{device_id}", "measured_at": "{at}", "read'.encode()
    if kind == "unknown_metric":
        reading = {"seq": 1, "metric": "mood", "value": 3, "unit": "1"}
    else:
        reading = {"seq": 2, "metric": "spo2", "value": 97, "unit": "kg"}
    return orjson.dumps({"v": 1, "device_id": device_id, **reading, "measured_at": at})
