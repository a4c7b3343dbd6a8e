"""Validated readings of one patient, columnar so detection can work on numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["ReadingBatch"]


@dataclass(frozen=True, slots=True)
class ReadingBatch:
    """Readings of one patient from one device, values in canonical units.

    Columns are parallel tuples: reading ``i`` is ``metrics[i]``, ``values[i]`` ...
    Times are integer microseconds since the Unix epoch (UTC): exact and cheap to compare.
    A value of None is a "no signal" reading: the sensor measured nothing at that time.
    """

    tenant: str
    care_unit: str
    patient: str
    device_id: str
    metrics: tuple[str, ...]
    values: tuple[float | None, ...]
    measured_at_us: tuple[int, ...]
    seqs: tuple[int, ...]
    received_at_us: tuple[int, ...]
    device_type: str = ""  # from the registry: signal-quality rules depend on it

    def __post_init__(self) -> None:
        n = len(self.metrics)
        lengths = (
            len(self.values),
            len(self.measured_at_us),
            len(self.seqs),
            len(self.received_at_us),
        )
        if any(length != n for length in lengths):
            raise ValueError(f"reading batch columns differ in length: {n} and {lengths}")

    def __len__(self) -> int:
        return len(self.metrics)

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "tenant": self.tenant,
                "care_unit": self.care_unit,
                "patient": self.patient,
                "device_id": self.device_id,
                "metric": self.metrics,
                "value": self.values,
                "measured_at_us": self.measured_at_us,
                "seq": self.seqs,
                "received_at_us": self.received_at_us,
                "device_type": self.device_type,
            }
        )

    @classmethod
    def from_json(cls, data: bytes) -> ReadingBatch:
        obj: dict[str, Any] = orjson.loads(data)
        return cls(
            obj["tenant"],
            obj["care_unit"],
            obj["patient"],
            obj["device_id"],
            tuple(obj["metric"]),
            tuple(None if v is None else float(v) for v in obj["value"]),
            tuple(obj["measured_at_us"]),
            tuple(obj["seq"]),
            tuple(obj["received_at_us"]),
            obj.get("device_type", ""),
        )
