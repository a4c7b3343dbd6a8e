"""Versioned MQTT payloads (pydantic): what a device may send, exactly.

A message is either one reading or a batch of readings from one device; both carry the
payload version ``v``. Unknown fields are rejected so a typo never passes silently.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
    model_validator,
)

__all__ = ["BatchPayloadV1", "DevicePayload", "PAYLOAD_ADAPTER", "ReadingV1", "SinglePayloadV1"]

MAX_READINGS_PER_MESSAGE = 1000  # a device upload after a long offline stretch stays below this

_ID = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


class ReadingV1(BaseModel):
    """One measurement as the device reports it, before unit normalisation."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    # strict: "72" or true is a device bug to surface, never a number to guess.
    seq: Annotated[int, Field(strict=True, ge=0, lt=2**63)]
    metric: Annotated[str, Field(min_length=1, max_length=64)]
    value: Annotated[float | None, Field(strict=True)] = None
    unit: Annotated[str, Field(min_length=1, max_length=16)]
    measured_at: AwareDatetime
    # "no_signal": the sensor is on the patient's device but measures nothing (probe off,
    # poor contact). The reading then has no value; it is stored flagged, never as a number.
    status: Literal["ok", "no_signal"] = "ok"

    @field_validator("measured_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _value_matches_status(self) -> ReadingV1:
        if self.status == "ok" and self.value is None:
            raise ValueError("value is required unless status is 'no_signal'")
        if self.status == "no_signal" and self.value not in (None, 0):
            raise ValueError("a 'no_signal' reading carries no value (omit it, or null or 0)")
        return self


class SinglePayloadV1(ReadingV1):
    """``{"v": 1, "device_id": ..., "seq": ..., "metric": ..., ...}``: one reading."""

    v: Literal[1]
    device_id: _ID


class BatchPayloadV1(BaseModel):
    """``{"v": 1, "device_id": ..., "readings": [...]}``: several readings in one message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1]
    device_id: _ID
    readings: Annotated[list[ReadingV1], Field(min_length=1, max_length=MAX_READINGS_PER_MESSAGE)]


DevicePayload = BatchPayloadV1 | SinglePayloadV1
PAYLOAD_ADAPTER: TypeAdapter[BatchPayloadV1 | SinglePayloadV1] = TypeAdapter(
    BatchPayloadV1 | SinglePayloadV1
)
