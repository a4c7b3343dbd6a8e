"""Versioned MQTT payloads (pydantic): what a device may send, exactly.

A message is either one reading or a batch of readings from one device; both carry the
payload version ``v``. Unknown fields are rejected so a typo never passes silently.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Final, Literal

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

# RFC 3339 date-time (section 5.6): seconds and an offset required; its note allows "t", "z"
# and a space for "T". pydantic alone would also take Unix seconds or milliseconds (a guess).
_RFC3339: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)

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

    @field_validator("measured_at", mode="before")
    @classmethod
    def _rfc3339_text(cls, value: object) -> object:
        if not isinstance(value, str) or _RFC3339.fullmatch(value) is None:
            raise ValueError(
                "measured_at must be an RFC 3339 date-time text with an offset, "
                "e.g. 2026-11-22T08:15:02Z (not a number, not a local time)"
            )
        return value

    @field_validator("measured_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        try:
            return value.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00:00+14:00 is before year 1 in UTC
            raise ValueError(
                "measured_at falls outside years 1 to 9999 once converted to UTC"
            ) from None

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
