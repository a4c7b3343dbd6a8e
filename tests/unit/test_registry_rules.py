"""Validation rules that come from the registry and the catalogue: revoked, unbound, bound
later, device type, no signal, and the exact conversions of the newer metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devices import (
    CATALOGUE,
    DeadLetterReason,
    DeviceBinding,
    DeviceStatus,
    RawEnvelope,
    RawMessage,
    RegistryEntry,
    datetime_to_us,
    device_topic,
)
from streams import ValidationLimits, ValidationResult, validate_envelope
from tests.unit.conftest import DictLookup

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NOW_US = datetime_to_us(NOW)
LIMITS = ValidationLimits(future_tolerance_us=300_000_000, max_age_us=7 * 86_400_000_000)
TENANT = "chu-a"
BOUND_SINCE = NOW - timedelta(hours=1)
BINDING = DeviceBinding("dev-1", TENANT, "icu", "p-1", datetime_to_us(BOUND_SINCE))


def _entry(device_type: str = "bedside_monitor", **changes: object) -> RegistryEntry:
    fields: dict[str, object] = {
        "device_id": "dev-1", "device_type": device_type, "tenant": TENANT,
        "status": DeviceStatus.ACTIVE, "binding": BINDING, "revoked_at_us": None,
    }  # fmt: skip
    fields.update(changes)
    return RegistryEntry(**fields)  # type: ignore[arg-type]


def _validate(entry: RegistryEntry, **reading: object) -> ValidationResult:
    payload = {"v": 1, "device_id": "dev-1", "seq": 1, "metric": "spo2", "value": 97, "unit": "%",
               "measured_at": (NOW - timedelta(minutes=1)).isoformat()}  # fmt: skip
    payload.update(reading)
    envelope = RawEnvelope(
        "gw", TENANT, "dev-1", (RawMessage(device_topic(TENANT, "dev-1"), NOW_US, payload),)
    )
    return validate_envelope(envelope, lookup=DictLookup([entry]), now_us=NOW_US, limits=LIMITS)


def _reason(result: ValidationResult) -> DeadLetterReason:
    assert result.batches == []
    [letter] = result.dead_letters
    return letter.reason


def test_revoked_device_is_refused_with_the_date_and_the_fix() -> None:
    revoked_at = datetime_to_us(NOW - timedelta(days=2))
    result = _validate(_entry(status=DeviceStatus.REVOKED, revoked_at_us=revoked_at))
    assert _reason(result) is DeadLetterReason.DEVICE_REVOKED
    assert "2026-02-27" in result.dead_letters[0].detail
    assert "veille devices add" in result.dead_letters[0].detail


def test_what_the_gateway_received_before_the_revocation_is_kept() -> None:
    """A backlog may bring a revoked device's last readings after its revocation: the broker
    took them from the device while it was allowed to publish, so they are stored; what the
    gateway received at or after the revocation is refused."""
    received_before = _validate(_entry(status=DeviceStatus.REVOKED, revoked_at_us=NOW_US + 1))
    assert received_before.dead_letters == [] and len(received_before.batches) == 1
    received_at = _validate(_entry(status=DeviceStatus.REVOKED, revoked_at_us=NOW_US))
    assert _reason(received_at) is DeadLetterReason.DEVICE_REVOKED


def test_unbound_device_is_refused() -> None:
    result = _validate(_entry(binding=None))
    assert _reason(result) is DeadLetterReason.UNBOUND_DEVICE
    assert "veille devices bind" in result.dead_letters[0].detail


def test_reading_measured_before_the_binding_is_refused() -> None:
    before = (BOUND_SINCE - timedelta(seconds=1)).isoformat()
    result = _validate(_entry(), measured_at=before)
    assert _reason(result) is DeadLetterReason.BEFORE_BINDING
    at_binding = _validate(_entry(), measured_at=BOUND_SINCE.isoformat())
    assert at_binding.dead_letters == [] and len(at_binding.batches[0]) == 1


@pytest.mark.parametrize(
    ("device_type", "metric", "unit", "value", "allowed"),
    [
        ("thermometer", "spo2", "%", 97, False),
        ("thermometer", "body_temperature", "Cel", 37.0, True),
        ("smartwatch", "step_count", "{steps}", 120, True),
        ("smartwatch", "systolic_bp", "mm[Hg]", 120, False),
        ("cgm", "blood_glucose", "mmol/L", 5.5, False),
        ("cgm", "interstitial_glucose", "mmol/L", 5.5, True),
        ("observation_app", "consciousness", "{ACVPU}", 0, True),
        ("no_such_type", "spo2", "%", 97, False),
    ],
)
def test_device_type_decides_which_metrics_are_accepted(
    device_type: str, metric: str, unit: str, value: float, allowed: bool
) -> None:
    result = _validate(_entry(device_type), metric=metric, unit=unit, value=value)
    if allowed:
        assert result.dead_letters == [] and result.batches[0].metrics == (metric,)
    else:
        assert _reason(result) is DeadLetterReason.METRIC_NOT_ALLOWED
        assert device_type in result.dead_letters[0].detail


@pytest.mark.parametrize(
    "reading",
    [
        {"status": "no_signal", "value": None},
        {"status": "no_signal"},
        {"value": 0},  # SpO2 0 %: the probe is off, not a dying patient
    ],
)
def test_no_signal_readings_are_kept_without_a_value(reading: dict[str, object]) -> None:
    payload = {"v": 1, "device_id": "dev-1", "seq": 1, "metric": "spo2", "unit": "%",
               "measured_at": (NOW - timedelta(minutes=1)).isoformat(), **reading}  # fmt: skip
    envelope = RawEnvelope(
        "gw", TENANT, "dev-1", (RawMessage(device_topic(TENANT, "dev-1"), NOW_US, payload),)
    )
    result = validate_envelope(
        envelope, lookup=DictLookup([_entry()]), now_us=NOW_US, limits=LIMITS
    )
    assert result.dead_letters == []
    assert result.batches[0].values == (None,)


def test_zero_is_a_value_where_zero_can_be_measured() -> None:
    result = _validate(
        _entry("observation_app"), metric="inhaled_oxygen_flow", unit="L/min", value=0
    )
    assert result.batches[0].values == (0.0,)


def test_no_signal_with_a_value_is_a_schema_error() -> None:
    assert _reason(_validate(_entry(), status="no_signal", value=95)) is DeadLetterReason.SCHEMA


def test_missing_value_without_no_signal_is_a_schema_error() -> None:
    assert _reason(_validate(_entry(), value=None)) is DeadLetterReason.SCHEMA


@pytest.mark.parametrize(
    ("metric", "value", "unit", "canonical"),
    [
        ("blood_glucose", 180.156, "mg/dL", 10.0),
        ("blood_glucose", 90, "mg/dL", 5.0),
        ("interstitial_glucose", 54, "mg/dL", 3.0),
        ("body_weight", 154.3, "[lb_av]", 70.0),
        ("body_weight", 3500, "g", 3.5),
        ("mean_bp", 12, "kPa", 90.0),
        ("skin_temperature", 91.4, "[degF]", 33.0),
    ],
)
def test_newer_metric_conversions(metric: str, value: float, unit: str, canonical: float) -> None:
    assert CATALOGUE[metric].to_canonical(value, unit) == canonical


def test_kpa_factor_is_the_exact_definition() -> None:
    scale = CATALOGUE["systolic_bp"].conversions["kPa"].scale
    assert scale * 133.322387415 == pytest.approx(1000, rel=1e-15)  # 1 mm[Hg] = 133.322387415 Pa
