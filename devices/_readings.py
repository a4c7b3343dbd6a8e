"""Validated readings, columnar so detection can work on numpy arrays.

The readings-topic record, format 2 (since issue 14): ``{"v": 2, "batches": [batch, ...]}``,
every patient of a validated burst whose pseudonym hashes to the record's partition
(``KeyPartitioner``), so one Faust event carries many patients and each patient's readings
stay on the partition of its detector state. Format 1 (one patient's batch, no ``"v"``) is
still read, so workers can drain what older validators wrote during an upgrade.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

import numpy as np
import orjson

from ._record_size import RECORD_BUDGET_BYTES, chunks_within

# Readings a batch sorts in Python rather than numpy (measured 2026-12-05: even at 64).
SORTED_IN_PYTHON = 64

__all__ = [
    "ReadingBatch",
    "ReadingsRecord",
    "batches_of",
    "encode_readings_record",
    "encode_readings_records",
    "read_readings_record",
]

PACKED_VERSION = 2

# What orjson gives for a value that needs no conversion: a float, or null ("no signal").
_FLOAT_OR_NONE: Final = frozenset({float, type(None)})


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
    # Memo of time_order(): six detector stages ask for it; never compared, printed or encoded.
    _time_order: tuple[int, ...] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Plain comparisons: every batch of every stage passes here (an ``any()`` over a
        # generator was 18 % of the sink's profile at 7,530 msg/s).
        n = len(self.metrics)
        if (
            len(self.values) != n
            or len(self.measured_at_us) != n
            or len(self.seqs) != n
            or len(self.received_at_us) != n
        ):
            lengths = (
                len(self.values),
                len(self.measured_at_us),
                len(self.seqs),
                len(self.received_at_us),
            )
            raise ValueError(f"reading batch columns differ in length: {n} and {lengths}")

    def __len__(self) -> int:
        return len(self.metrics)

    def time_order(self) -> tuple[int, ...]:
        """Positions of the readings in event-time order, stable on ties; computed once per
        batch (the detector's stages each walk the batch in this order)."""
        order = self._time_order
        if order is None:
            order = _stable_time_order(self.measured_at_us)
            object.__setattr__(self, "_time_order", order)  # a memo: the batch stays frozen
        return order

    def to_json(self) -> bytes:
        """Format 1: this batch alone."""
        return orjson.dumps(self.to_obj())

    def to_obj(self) -> dict[str, Any]:
        return {
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

    @classmethod
    def from_json(cls, data: bytes) -> ReadingBatch:
        """A format 1 record."""
        return cls.from_obj(orjson.loads(data))

    @classmethod
    def from_obj(cls, obj: dict[str, Any]) -> ReadingBatch:
        return cls(
            obj["tenant"],
            obj["care_unit"],
            obj["patient"],
            obj["device_id"],
            tuple(obj["metric"]),
            _as_floats(obj["value"]),
            tuple(obj["measured_at_us"]),
            tuple(obj["seq"]),
            tuple(obj["received_at_us"]),
            obj.get("device_type", ""),
        )


def _stable_time_order(times: tuple[int, ...]) -> tuple[int, ...]:
    """The stable argsort of ``times``. Devices send readings in time order, so an O(n)
    check (C-level) usually spares the sort; else numpy's stable argsort for an upload and
    Python's (as stable, so the same order) up to :data:`SORTED_IN_PYTHON` readings, where
    numpy's call costs more than the sort (1.4 µs against 0.3 for one reading)."""
    n = len(times)
    if list(times) == sorted(times):
        return tuple(range(n))
    if n <= SORTED_IN_PYTHON:
        return tuple(sorted(range(n), key=times.__getitem__))
    return tuple(np.argsort(np.asarray(times, dtype=np.int64), kind="stable").tolist())


def _as_floats(values: list[Any]) -> tuple[float | None, ...]:
    """JSON values as floats, None kept. orjson reads ``96`` as an int: convert then; the
    validator writes floats, so usually one C-level type scan replaces a Python loop."""
    if _FLOAT_OR_NONE.issuperset(map(type, values)):
        return tuple(values)
    return tuple([None if v is None else float(v) for v in values])


def encode_readings_record(batches: list[ReadingBatch]) -> bytes:
    """A format 2 record holding ``batches`` in order."""
    return orjson.dumps({"v": PACKED_VERSION, "batches": [b.to_obj() for b in batches]})


def encode_readings_records(
    batches: list[ReadingBatch],
    budget: int = RECORD_BUDGET_BYTES,
    *,
    correlation_ids: Sequence[str] = (),
) -> list[bytes]:
    """Format 2 records holding ``batches`` in order, each within ``budget`` bytes (one batch
    alone may exceed it): the bytes :func:`encode_readings_record` gives for each chunk, with
    ``"cids"``, the correlation ids of the gateway bursts they came from, when given."""
    encoded = [orjson.dumps(b.to_obj()) for b in batches]
    cids = b'"cids":%s,' % orjson.dumps(list(correlation_ids)) if correlation_ids else b""
    head = b'{"v":%d,%s"batches":[' % (PACKED_VERSION, cids)
    return [
        head + b",".join(encoded[i] for i in chunk) + b"]}"
        for chunk in chunks_within([len(e) + 1 for e in encoded], budget - len(head) - 2)
    ]


class ReadingsRecord(NamedTuple):
    batches: list[ReadingBatch]
    correlation_ids: list[str]  # of the gateway bursts, for the logs; empty in format 1


def read_readings_record(data: bytes) -> ReadingsRecord:
    """The batches of a readings record of either format, in the order written, and its
    correlation ids. Raises ValueError, KeyError or TypeError for a record that is neither."""
    obj = orjson.loads(data)
    if not isinstance(obj, dict):
        raise ValueError("a readings record is a JSON object")
    version = obj.get("v")
    if version == PACKED_VERSION:
        cids = obj.get("cids")
        ids = [c for c in cids if isinstance(c, str)] if isinstance(cids, list) else []
        return ReadingsRecord([ReadingBatch.from_obj(b) for b in obj["batches"]], ids)
    if version is None:
        return ReadingsRecord([ReadingBatch.from_obj(obj)], [])
    raise ValueError(f"readings record format {version!r} is not one this worker reads (1 or 2)")


def batches_of(data: bytes) -> list[ReadingBatch]:
    """The batches of a readings record of either format, in the order written."""
    return read_readings_record(data).batches
