"""Validation: raw MQTT payloads -> readings in canonical units, or dead letters with a reason.

Pure logic (no Kafka): the validate agent calls :func:`validate_envelope` for each record.
Order of checks, each failure a dead letter with a reason a person can act on:
payload shape and version; payload device = topic device; device known, in the topic's
tenant, not revoked, bound to a patient; then per reading: metric known and allowed for the
device type, unit accepted, value plausible (or flagged "no signal"), time neither in the
future nor too old nor before the device was bound to this patient.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import orjson
from pydantic import ValidationError

from devices import (
    CATALOGUE,
    BatchPayloadV1,
    DeadLetter,
    DeadLetterReason,
    DeviceStatus,
    RawEnvelope,
    RawMessage,
    ReadingBatch,
    ReadingV1,
    RegistryEntry,
    SinglePayloadV1,
    datetime_to_us,
    device_type_named,
    metric_named,
    us_to_datetime,
)

__all__ = ["RegistryLookup", "ValidationLimits", "ValidationResult", "validate_envelope"]

from ._payload_fast import PlainReading, read_plainly

STAGE = "validate"
SUPPORTED_VERSIONS = frozenset({1})

Rejection = tuple[DeadLetterReason, str]


class RegistryLookup(Protocol):
    def entry_for(self, device_id: str) -> RegistryEntry | None: ...


@dataclass(frozen=True, slots=True)
class ValidationLimits:
    """How far from the validator's clock a measurement time may be."""

    future_tolerance_us: int
    max_age_us: int


@dataclass(slots=True)
class ValidationResult:
    batches: list[ReadingBatch] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Screen:
    """What every check of :func:`_reading_problem` comes to for one device now, worked out
    once per envelope, so that a reading that passes them all costs a few look-ups."""

    allowed: frozenset[str]  # the metrics its device type may send
    earliest_us: int  # neither too old nor before the binding
    latest_us: int  # not in the future

    @classmethod
    def of(cls, entry: RegistryEntry, now_us: int, limits: ValidationLimits) -> _Screen:
        assert entry.binding is not None  # no device problem means a bound device
        device_type = device_type_named(entry.device_type)
        return cls(
            device_type.metrics if device_type is not None else frozenset(),
            max(now_us - limits.max_age_us, entry.binding.bound_since_us),
            now_us + limits.future_tolerance_us,
        )

    def plain_value(self, reading: PlainReading) -> float | None:
        """The canonical value of a reading with a value that passes every check, else None:
        a "no signal" reading or a refused one, which :func:`_reading_problem` tells apart."""
        metric = CATALOGUE.get(reading.metric)
        value = reading.value
        unit = reading.unit
        if (
            metric is None
            or type(value) is not float
            or reading.no_signal_status
            or (value == 0 and metric.no_signal_zero)
            or reading.metric not in self.allowed
            or not self.earliest_us <= reading.measured_at_us <= self.latest_us
            or (unit != metric.unit and unit not in metric.conversions)
        ):
            return None
        canonical = metric.to_canonical(value, unit)
        return canonical if metric.plausible_min <= canonical <= metric.plausible_max else None


def _schema_detail(exc: ValidationError) -> str:
    parts = [
        f"{'.'.join(str(p) for p in err['loc']) or 'payload'}: {err['msg']}"
        for err in exc.errors()[:5]
    ]
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _parse(payload: Any) -> BatchPayloadV1 | SinglePayloadV1 | Rejection:
    if not isinstance(payload, Mapping):
        kind = type(payload).__name__
        return DeadLetterReason.SCHEMA, f"payload must be a JSON object, got {kind}"
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


def _device_problem(
    envelope: RawEnvelope, entry: RegistryEntry | None, received_at_us: int
) -> Rejection | None:
    """What makes this device's message unacceptable, if anything.

    A revoked device's message is judged by when the gateway received it: what the broker
    took from the device before the revocation is kept, even when a backlog brings it here
    after; what came after is refused.
    """
    device = envelope.device_id
    if entry is None:
        return (
            DeadLetterReason.UNKNOWN_DEVICE,
            f"device {device!r} is not provisioned; add it with `veille devices add`",
        )
    if entry.tenant != envelope.tenant:
        return (
            DeadLetterReason.TENANT_MISMATCH,
            f"device {device!r} is registered to tenant {entry.tenant!r}, not "
            f"{envelope.tenant!r}; publish under veille/v1/{entry.tenant}/...",
        )
    if entry.status is DeviceStatus.REVOKED and (
        entry.revoked_at_us is None or received_at_us >= entry.revoked_at_us
    ):
        since = us_to_datetime(entry.revoked_at_us).isoformat() if entry.revoked_at_us else "?"
        return (
            DeadLetterReason.DEVICE_REVOKED,
            f"device {device!r} is revoked since {since}; re-provision it with "
            "`veille devices add` and bind it again",
        )
    if entry.binding is None:
        return (
            DeadLetterReason.UNBOUND_DEVICE,
            f"device {device!r} is not bound to a patient; bind it with `veille devices bind`",
        )
    return None


def _reading_problem(
    reading: PlainReading, entry: RegistryEntry, now_us: int, limits: ValidationLimits
) -> Rejection | tuple[None, float | None]:
    """A rejection, or the canonical value (None for a "no signal" reading)."""
    metric = metric_named(reading.metric)
    if metric is None:
        return DeadLetterReason.UNKNOWN_METRIC, f"metric {reading.metric!r} is not in the catalogue"
    device_type = device_type_named(entry.device_type)
    if device_type is None or not device_type.may_send(metric.name):
        allowed = ", ".join(sorted(device_type.metrics)) if device_type else "none (unknown type)"
        return (
            DeadLetterReason.METRIC_NOT_ALLOWED,
            f"a {entry.device_type} does not measure {metric.name} (it may send: {allowed})",
        )
    if not metric.accepts(reading.unit):
        accepted = ", ".join((metric.unit, *metric.conversions))
        return (
            DeadLetterReason.UNIT_NOT_ALLOWED,
            f"unit {reading.unit!r} is not accepted for {metric.name} (accepted: {accepted})",
        )
    value: float | None = None
    no_signal = reading.no_signal_status or (reading.value == 0 and metric.no_signal_zero)
    if not no_signal:
        assert reading.value is not None  # the payload model requires it for status "ok"
        value = metric.to_canonical(reading.value, reading.unit)
        if not metric.is_plausible(value):
            return (
                DeadLetterReason.IMPLAUSIBLE,
                f"{metric.name} {value} {metric.unit} is outside the plausible range "
                f"[{metric.plausible_min}, {metric.plausible_max}]",
            )
    measured = reading.measured_at_us
    if measured > now_us + limits.future_tolerance_us:
        ahead = (measured - now_us) / 1e6
        return (
            DeadLetterReason.FUTURE,
            f"measured_at is {ahead:.0f} s in the future; check the device clock",
        )
    if measured < now_us - limits.max_age_us:
        age = (now_us - measured) / 1e6
        return DeadLetterReason.TOO_OLD, f"measured_at is {age:.0f} s old, beyond the accepted age"
    assert entry.binding is not None
    if measured < entry.binding.bound_since_us:
        since = us_to_datetime(entry.binding.bound_since_us).isoformat()
        return (
            DeadLetterReason.BEFORE_BINDING,
            f"measured_at {us_to_datetime(measured).isoformat()} is before the device was bound to "
            f"this patient ({since}); it may belong to the previous patient",
        )
    return None, value


def _plain(reading: ReadingV1) -> PlainReading:
    return PlainReading(
        reading.seq,
        reading.metric,
        reading.value,
        reading.unit,
        datetime_to_us(reading.measured_at),
        reading.status == "no_signal",
    )


class _Read(NamedTuple):
    device_id: str
    readings: list[PlainReading]
    raws: list[Any]  # each reading's JSON as sent, for its dead letter


def _readings_of(payload: Any, *, fast: bool) -> _Read | Rejection:
    """The payload's readings, or why it is refused. Plainly well-formed payloads skip
    pydantic (``_payload_fast``); the rest meet it and its exact reasons."""
    plain = read_plainly(payload) if fast else None
    if plain is not None:
        device_id, readings = plain
        return _Read(
            device_id, readings, payload["readings"] if "readings" in payload else [payload]
        )
    parsed = _parse(payload)
    if isinstance(parsed, tuple):
        return parsed
    if isinstance(parsed, BatchPayloadV1):
        return _Read(parsed.device_id, [_plain(r) for r in parsed.readings], payload["readings"])
    return _Read(parsed.device_id, [_plain(parsed)], [payload])


def validate_envelope(
    envelope: RawEnvelope,
    *,
    lookup: RegistryLookup,
    now_us: int,
    limits: ValidationLimits,
    fast: bool = True,
) -> ValidationResult:
    """Split one raw record into one reading batch (its device's patient) and dead letters.

    A dead letter is named by what the device sent (topic, message, position in it, reason),
    never by where the gateway put it: the same MQTT message carried again, in a record the
    producer wrote twice or in a new record after the broker redelivered it, is one dead
    letter, as the same reading is one row. ``fast=False`` sends every payload through
    pydantic (the differential test compares both).
    """
    result = _Results(envelope)
    entry = lookup.entry_for(envelope.device_id)
    metrics: list[str] = []
    values: list[float | None] = []
    measured: list[int] = []
    seqs: list[int] = []
    received_at: list[int] = []
    screen: _Screen | None = None  # once a message passes the device checks
    for message in envelope.messages:
        read = _readings_of(message.payload, fast=fast)
        if not isinstance(read, _Read):
            result.reject(message, *read)
            continue
        device_id, readings, raws = read
        if device_id != envelope.device_id:
            result.reject(
                message,
                DeadLetterReason.DEVICE_MISMATCH,
                f"payload device_id {device_id!r} differs from topic device {envelope.device_id!r}",
            )
            continue
        device_problem = _device_problem(envelope, entry, message.received_at_us)
        if device_problem is not None:
            result.reject(message, *device_problem)
            continue
        assert entry is not None  # no device problem means a known device
        if screen is None:
            screen = _Screen.of(entry, now_us, limits)
        received = message.received_at_us
        for sub, reading in enumerate(readings):
            value = screen.plain_value(reading)
            if value is None:  # "no signal" or refused: the exact checks tell which
                reason, outcome = _reading_problem(reading, entry, now_us, limits)
                if reason is not None:
                    result.reject(message, reason, str(outcome), raws[sub], sub)
                    continue
                value = outcome if outcome is None else float(outcome)
            metrics.append(reading.metric)
            values.append(value)
            measured.append(reading.measured_at_us)
            seqs.append(reading.seq)
            received_at.append(received)
    if entry is not None and entry.binding is not None and metrics:
        binding = entry.binding
        result.value.batches.append(
            ReadingBatch(
                binding.tenant,
                binding.care_unit,
                binding.patient,
                binding.device_id,
                tuple(metrics),
                tuple(values),
                tuple(measured),
                tuple(seqs),
                tuple(received_at),
                entry.device_type,
            )
        )
    return result.value


def _raw_json(value: Any) -> bytes:
    """The rejected input as JSON. Anything the gateway decoded re-encodes; a record from
    another producer might not (too deep, integer beyond 64 bits), and must not stop the stage."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        return f"<{type(value).__name__} that cannot be written as JSON: {exc}>".encode()


@dataclass(slots=True)
class _Results:
    envelope: RawEnvelope
    value: ValidationResult = field(default_factory=ValidationResult)
    _digested: RawMessage | None = None
    _digest: str = ""

    def _message_digest(self, message: RawMessage) -> str:
        """Once per message: a batch of a thousand rejected readings digests it once."""
        if self._digested is not message:
            self._digested = message
            self._digest = hashlib.sha256(_raw_json(message.payload)).hexdigest()
        return self._digest

    def reject(
        self,
        message: RawMessage,
        reason: DeadLetterReason,
        detail: str,
        raw: Any = None,
        sub: int = -1,
    ) -> None:
        """``sub`` is the reading's position in its message (-1: the whole message)."""
        body = _raw_json(message.payload if raw is None else raw)
        self.value.dead_letters.append(
            DeadLetter.build(
                stage=STAGE,
                reason=reason,
                detail=detail,
                mqtt_topic=message.mqtt_topic,
                device_id=self.envelope.device_id,
                received_at_us=message.received_at_us,
                raw=body,
                origin=f"{sub}/{self._message_digest(message)}",
            )
        )
