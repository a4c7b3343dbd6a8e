"""Dead letters: every rejected input keeps its raw bytes and a reason a person can act on."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

__all__ = ["DeadLetter", "DeadLetterReason"]

RAW_KEEP_BYTES = 64 * 1024  # enough to diagnose any payload; bigger ones are cut, reason says so


class DeadLetterReason(StrEnum):
    """Why an input was rejected. Stable strings: dashboards and tests match on them."""

    UNDECODABLE = "undecodable"  # not UTF-8 JSON
    DUPLICATE_KEY = "duplicate_key"  # a JSON object repeats a key: which value holds is ambiguous
    BAD_TOPIC = "bad_topic"  # topic does not follow veille/v1/{tenant}/{device}/{stream}
    TOO_LARGE = "too_large"
    UNKNOWN_VERSION = "unknown_version"
    SCHEMA = "schema"  # JSON, but not a v1 payload
    DEVICE_MISMATCH = "device_mismatch"  # payload device id differs from the topic's
    TENANT_MISMATCH = "tenant_mismatch"  # topic tenant differs from the device's registration
    UNKNOWN_DEVICE = "unknown_device"
    DEVICE_REVOKED = "device_revoked"
    UNBOUND_DEVICE = "unbound_device"  # provisioned, not yet bound to a patient
    BEFORE_BINDING = "before_binding"  # measured before the device was bound to this patient
    METRIC_NOT_ALLOWED = "metric_not_allowed"  # the device type does not measure it
    UNKNOWN_METRIC = "unknown_metric"
    UNIT_NOT_ALLOWED = "unit_not_allowed"
    IMPLAUSIBLE = "implausible"
    FUTURE = "future"
    TOO_OLD = "too_old"
    STORE_REJECTED = "store_rejected"  # the database refused the record's content


def _storable(text: str) -> str:
    """PostgreSQL text holds neither NUL nor lone surrogates (not UTF-8): keep them visible as
    escapes instead of failing the whole batch."""
    return text.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\x00")


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # exact, even for a lone surrogate


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected message or reading, with where it came from and why.

    ``dead_letter_id`` is deterministic (stage, origin, raw, index) so a redelivered input
    lands once in the dead-letter table.
    """

    dead_letter_id: str
    stage: str
    reason: DeadLetterReason
    detail: str
    mqtt_topic: str
    device_id: str | None
    received_at_us: int
    raw: str

    @classmethod
    def build(
        cls,
        *,
        stage: str,
        reason: DeadLetterReason,
        detail: str,
        mqtt_topic: str,
        device_id: str | None,
        received_at_us: int,
        raw: bytes | str,
        origin: str = "",
    ) -> DeadLetter:
        raw_bytes = _utf8(raw) if isinstance(raw, str) else raw
        digest = hashlib.sha256(
            b"\x1f".join(
                (_utf8(stage), _utf8(origin), _utf8(mqtt_topic), reason.encode(), raw_bytes)
            )
        ).hexdigest()[:32]
        text = _storable(raw_bytes[:RAW_KEEP_BYTES].decode("utf-8", errors="backslashreplace"))
        return cls(
            digest, stage, reason, _storable(detail[:2000]), _storable(mqtt_topic), device_id,
            received_at_us, text,
        )  # fmt: skip

    @classmethod
    def unreadable_record(
        cls,
        *,
        stage: str,
        topic: str,
        partition: int,
        offset: int,
        raw: bytes,
        error: Exception,
        reason: DeadLetterReason = DeadLetterReason.SCHEMA,
    ) -> DeadLetter:
        """A Kafka record a stage cannot use: kept, so a bad record never stops the stage."""
        what = "unreadable" if reason is DeadLetterReason.SCHEMA else "refused"
        return cls.build(
            stage=stage,
            reason=reason,
            detail=f"{what} {topic} record: {error}",
            mqtt_topic="",
            device_id=None,
            received_at_us=time.time_ns() // 1000,
            raw=raw,
            origin=f"{topic}/{partition}/{offset}",
        )

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "id": self.dead_letter_id,
                "stage": self.stage,
                "reason": self.reason.value,
                "detail": self.detail,
                "mqtt_topic": self.mqtt_topic,
                "device_id": self.device_id,
                "received_at_us": self.received_at_us,
                "raw": self.raw,
            }
        )

    @classmethod
    def from_json(cls, data: bytes) -> DeadLetter:
        obj: dict[str, Any] = orjson.loads(data)
        return cls(
            obj["id"],
            obj["stage"],
            DeadLetterReason(obj["reason"]),
            obj["detail"],
            obj["mqtt_topic"],
            obj["device_id"],
            obj["received_at_us"],
            obj["raw"],
        )
