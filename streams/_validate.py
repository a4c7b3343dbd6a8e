"""Validation: raw MQTT payloads -> readings in canonical units, or dead letters with a reason.

Pure logic (no Kafka): the validate agent calls :func:`validate_envelope` for each record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from pydantic import ValidationError

from devices import (
    BatchPayloadV1,
    DeadLetter,
    DeadLetterReason,
    DeviceBinding,
    RawEnvelope,
    RawMessage,
    ReadingBatch,
    ReadingV1,
    SinglePayloadV1,
    datetime_to_us,
    metric_named,
)

__all__ = ["BindingLookup", "ValidationLimits", "ValidationResult", "validate_envelope"]

STAGE = "validate"
SUPPORTED_VERSIONS = frozenset({1})


class BindingLookup(Protocol):
    def binding_for(self, device_id: str) -> DeviceBinding | None: ...


@dataclass(frozen=True, slots=True)
class ValidationLimits:
    """How far from the validator's clock a measurement time may be."""

    future_tolerance_us: int
    max_age_us: int


@dataclass(slots=True)
class ValidationResult:
    batches: list[ReadingBatch] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)


@dataclass(slots=True)
class _Columns:
    metrics: list[str] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    measured: list[int] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    received: list[int] = field(default_factory=list)


def _schema_detail(exc: ValidationError) -> str:
    parts = [
        f"{'.'.join(str(p) for p in err['loc']) or 'payload'}: {err['msg']}"
        for err in exc.errors()[:5]
    ]
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _parse(payload: Any) -> BatchPayloadV1 | SinglePayloadV1 | tuple[DeadLetterReason, str]:
    if not isinstance(payload, Mapping):
        return (
            DeadLetterReason.SCHEMA,
            f"payload must be a JSON object, got {type(payload).__name__}",
        )
    version = payload.get("v")
    if version is None:
        return DeadLetterReason.SCHEMA, "payload has no version field 'v'"
    if type(version) is not int or version not in SUPPORTED_VERSIONS:
        return (
            DeadLetterReason.UNKNOWN_VERSION,
            f"payload version {version!r} is not supported (supported: 1)",
        )
    model = BatchPayloadV1 if "readings" in payload else SinglePayloadV1
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        return DeadLetterReason.SCHEMA, _schema_detail(exc)


def _reading_problem(
    reading: ReadingV1, now_us: int, limits: ValidationLimits
) -> tuple[DeadLetterReason, str] | tuple[None, float]:
    metric = metric_named(reading.metric)
    if metric is None:
        return DeadLetterReason.UNKNOWN_METRIC, f"metric {reading.metric!r} is not in the catalogue"
    if not metric.accepts(reading.unit):
        accepted = ", ".join((metric.unit, *metric.conversions))
        return (
            DeadLetterReason.UNIT_NOT_ALLOWED,
            f"unit {reading.unit!r} is not accepted for {metric.name} (accepted: {accepted})",
        )
    value = metric.to_canonical(reading.value, reading.unit)
    if not metric.is_plausible(value):
        return (
            DeadLetterReason.IMPLAUSIBLE,
            f"{metric.name} {value} {metric.unit} is outside the plausible range "
            f"[{metric.plausible_min}, {metric.plausible_max}]",
        )
    measured = datetime_to_us(reading.measured_at)
    if measured > now_us + limits.future_tolerance_us:
        ahead = (measured - now_us) / 1e6
        return (
            DeadLetterReason.FUTURE,
            f"measured_at is {ahead:.0f} s in the future; check the device clock",
        )
    if measured < now_us - limits.max_age_us:
        age = (now_us - measured) / 1e6
        return DeadLetterReason.TOO_OLD, f"measured_at is {age:.0f} s old, beyond the accepted age"
    return None, value


def _readings_of(
    payload: BatchPayloadV1 | SinglePayloadV1, raw: Any
) -> list[tuple[ReadingV1, Any]]:
    if isinstance(payload, BatchPayloadV1):
        return list(zip(payload.readings, raw["readings"], strict=True))
    return [(payload, raw)]


def validate_envelope(
    envelope: RawEnvelope,
    *,
    lookup: BindingLookup,
    now_us: int,
    limits: ValidationLimits,
    origin: str,
) -> ValidationResult:
    """Split one raw record into one reading batch (its device's patient) and dead letters.

    ``origin`` names the raw record (topic/partition/offset) so dead-letter ids are stable
    when the record is processed again after a crash.
    """
    result = _Results(envelope, origin)
    binding = lookup.binding_for(envelope.device_id)
    columns = _Columns()
    for index, message in enumerate(envelope.messages):
        parsed = _parse(message.payload)
        if isinstance(parsed, tuple):
            result.reject(message, index, *parsed)
            continue
        if parsed.device_id != envelope.device_id:
            result.reject(
                message,
                index,
                DeadLetterReason.DEVICE_MISMATCH,
                f"payload device_id {parsed.device_id!r} differs from topic device "
                f"{envelope.device_id!r}",
            )
            continue
        if binding is None:
            result.reject(
                message,
                index,
                DeadLetterReason.UNKNOWN_DEVICE,
                f"device {envelope.device_id!r} is not provisioned; "
                "add and bind it in the registry",
            )
            continue
        if binding.tenant != envelope.tenant:
            result.reject(
                message,
                index,
                DeadLetterReason.TENANT_MISMATCH,
                f"device {envelope.device_id!r} is registered to tenant {binding.tenant!r}, "
                f"not {envelope.tenant!r}; publish under veille/v1/{binding.tenant}/...",
            )
            continue
        for sub, (reading, raw_reading) in enumerate(_readings_of(parsed, message.payload)):
            reason, outcome = _reading_problem(reading, now_us, limits)
            if reason is not None:
                result.reject(message, index, reason, str(outcome), raw_reading, sub)
                continue
            columns.metrics.append(reading.metric)
            columns.values.append(float(outcome))
            columns.measured.append(datetime_to_us(reading.measured_at))
            columns.seqs.append(reading.seq)
            columns.received.append(message.received_at_us)
    if binding is not None and columns.metrics:
        result.value.batches.append(
            ReadingBatch(
                binding.tenant,
                binding.care_unit,
                binding.patient,
                binding.device_id,
                tuple(columns.metrics),
                tuple(columns.values),
                tuple(columns.measured),
                tuple(columns.seqs),
                tuple(columns.received),
            )
        )
    return result.value


@dataclass(slots=True)
class _Results:
    envelope: RawEnvelope
    origin: str
    value: ValidationResult = field(default_factory=ValidationResult)

    def reject(
        self,
        message: RawMessage,
        index: int,
        reason: DeadLetterReason,
        detail: str,
        raw: Any = None,
        sub: int = -1,
    ) -> None:
        body = orjson.dumps(message.payload if raw is None else raw)
        self.value.dead_letters.append(
            DeadLetter.build(
                stage=STAGE,
                reason=reason,
                detail=detail,
                mqtt_topic=message.mqtt_topic,
                device_id=self.envelope.device_id,
                received_at_us=message.received_at_us,
                raw=body,
                origin=f"{self.origin}/{index}/{sub}",
            )
        )
