"""Wire records (RawEnvelope, ReadingBatch, DeadLetter) and the payload -> batch round trip."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices import (
    CATALOGUE,
    DEVICE_TYPES,
    DeadLetter,
    DeadLetterReason,
    DeviceBinding,
    DeviceStatus,
    RawEnvelope,
    RawMessage,
    ReadingBatch,
    RegistryEntry,
    batches_of,
    device_topic,
    encode_readings_record,
    us_to_datetime,
)
from streams import ValidationLimits, validate_envelope

T_US = 1_740_000_000_000_000


def _reading_batch() -> ReadingBatch:
    return ReadingBatch(
        "chu-a",
        "cardiology",
        "p-0123",
        "sm-1",
        ("heart_rate", "spo2", "body_temperature"),
        (72.0, 97.0, 37.3),
        (T_US, T_US + 1, T_US + 2),
        (0, 1, 2**63 - 1),
        (T_US + 10, T_US + 11, T_US + 12),
    )


# -- RawEnvelope ------------------------------------------------------------------------------


def test_raw_envelope_json_round_trip() -> None:
    topic = device_topic("chu-a", "sm-1")
    envelope = RawEnvelope(
        "gw-1",
        "chu-a",
        "sm-1",
        (
            RawMessage(topic, T_US, {"v": 1, "nested": {"list": [1, 2.5, None, True, "é"]}}),
            RawMessage(topic, T_US + 1, [1, 2]),
            RawMessage(topic, T_US + 2, "text"),
            RawMessage(topic, T_US + 3, None),
        ),
    )
    assert RawEnvelope.from_json(envelope.to_json()) == envelope


@pytest.mark.parametrize(
    "data",
    [
        b'{"v": 2, "gateway": "g", "tenant": "t", "device_id": "d", "messages": []}',
        b'{"gateway": "g", "tenant": "t", "device_id": "d", "messages": []}',
        b"[1]",
        b'"v1"',
    ],
)
def test_raw_envelope_rejects_other_versions(data: bytes) -> None:
    with pytest.raises(ValueError, match="raw envelope"):
        RawEnvelope.from_json(data)


# -- ReadingBatch -----------------------------------------------------------------------------


def test_reading_batch_json_round_trip() -> None:
    batch = _reading_batch()
    assert len(batch) == 3
    assert ReadingBatch.from_json(batch.to_json()) == batch


def test_reading_batch_values_come_back_as_floats() -> None:
    data = orjson.loads(_reading_batch().to_json())
    data["value"] = [72, 97, 37]
    batch = ReadingBatch.from_json(orjson.dumps(data))
    assert batch.values == (72.0, 97.0, 37.0)
    assert all(type(v) is float for v in batch.values)


def test_a_packed_readings_record_holds_several_patients_in_order() -> None:
    first = _reading_batch()
    other = ReadingBatch("t", "u", "p-2", "d-2", ("heart_rate",), (61.0,), (1,), (7,), (2,))
    assert batches_of(encode_readings_record([first, other, first])) == [first, other, first]


def test_a_format_1_readings_record_of_an_older_validator_is_still_read() -> None:
    batch = _reading_batch()
    assert batches_of(batch.to_json()) == [batch]


def test_a_readings_record_of_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="format 3"):
        batches_of(b'{"v": 3, "batches": []}')


def test_empty_reading_batch_round_trips() -> None:
    empty = ReadingBatch("t", "u", "p", "d", (), (), (), (), ())
    assert len(empty) == 0
    assert ReadingBatch.from_json(empty.to_json()) == empty


@pytest.mark.parametrize(
    "column", ["metrics", "values", "measured_at_us", "seqs", "received_at_us"]
)
def test_reading_batch_rejects_columns_of_different_lengths(column: str) -> None:
    good = _reading_batch()
    fields: dict[str, Any] = {
        name: getattr(good, name)
        for name in (
            "tenant",
            "care_unit",
            "patient",
            "device_id",
            "metrics",
            "values",
            "measured_at_us",
            "seqs",
            "received_at_us",
        )
    }
    fields[column] = fields[column][:-1]
    with pytest.raises(ValueError, match="differ in length"):
        ReadingBatch(**fields)


# -- DeadLetter -----------------------------------------------------------------------------------


@pytest.mark.parametrize("device_id", ["sm-1", None])
@pytest.mark.parametrize("reason", list(DeadLetterReason))
def test_dead_letter_json_round_trip(reason: DeadLetterReason, device_id: str | None) -> None:
    letter = DeadLetter.build(
        stage="validate",
        reason=reason,
        detail="something is wrong: é",
        mqtt_topic=device_topic("chu-a", "sm-1"),
        device_id=device_id,
        received_at_us=T_US,
        raw=b'{"v": 1, "bad": true}',
        origin="raw/0/1/0/-1",
    )
    assert DeadLetter.from_json(letter.to_json()) == letter
    assert orjson.loads(letter.to_json())["reason"] == reason.value


def test_dead_letter_id_depends_on_its_inputs() -> None:
    def build(**overrides: Any) -> DeadLetter:
        args: dict[str, Any] = {
            "stage": "validate",
            "reason": DeadLetterReason.SCHEMA,
            "detail": "d",
            "mqtt_topic": "veille/v1/t/d/readings",
            "device_id": "d",
            "received_at_us": T_US,
            "raw": b"{}",
            "origin": "o",
        }
        return DeadLetter.build(**(args | overrides))

    base = build().dead_letter_id
    assert build().dead_letter_id == base
    assert build(raw="{}").dead_letter_id == base  # str and bytes raw are the same input
    assert build(detail="other").dead_letter_id == base  # wording may change; identity not
    variants = [
        build(stage="gateway"),
        build(reason=DeadLetterReason.IMPLAUSIBLE),
        build(mqtt_topic="veille/v1/t/e/readings"),
        build(raw=b"[]"),
        build(origin="o2"),
    ]
    ids = {v.dead_letter_id for v in variants}
    assert len(ids) == len(variants)
    assert base not in ids


def test_dead_letter_keeps_a_bounded_storable_copy() -> None:
    letter = DeadLetter.build(
        stage="gateway",
        reason=DeadLetterReason.TOO_LARGE,
        detail="x" * 5000 + "\x00",
        mqtt_topic="veille/v1/t/d/readings",
        device_id="d",
        received_at_us=T_US,
        raw=b"\x00" + b"a" * 200_000,
    )
    assert len(letter.detail) == 2000
    assert letter.raw.startswith("\\x00aaa")
    assert "\x00" not in letter.raw
    assert len(letter.raw) == 64 * 1024 + 3  # 64 KiB kept, the NUL written as 4 characters


# -- payload JSON -> validate -> ReadingBatch JSON -> ReadingBatch ------------------------------

DEVICE = "sm-00042"
TENANT = "chu-prop"
NOW_US = T_US
TOLERANCE_US = 300 * 1_000_000
MAX_AGE_US = 7 * 86_400 * 1_000_000
LIMITS = ValidationLimits(future_tolerance_us=TOLERANCE_US, max_age_us=MAX_AGE_US)
BINDING = DeviceBinding(DEVICE, TENANT, "cardiology", "p-prop", 0)


class _OneDevice:
    def __init__(self, device_type: str) -> None:
        self._entry = RegistryEntry(DEVICE, device_type, TENANT, DeviceStatus.ACTIVE, BINDING)

    def entry_for(self, device_id: str) -> RegistryEntry | None:
        return self._entry if device_id == DEVICE else None


@st.composite
def valid_readings(draw: st.DrawFn, metrics: list[str]) -> tuple[dict[str, Any], int]:
    """A reading as a device would send it, and its measurement time in microseconds."""
    metric = CATALOGUE[draw(st.sampled_from(metrics))]
    raw = draw(
        st.floats(metric.plausible_min, metric.plausible_max, allow_nan=False, allow_infinity=False)
    )
    at_us = draw(st.integers(NOW_US - MAX_AGE_US, NOW_US + TOLERANCE_US))
    offset_minutes = draw(st.integers(-12 * 60, 14 * 60))
    at = us_to_datetime(at_us).astimezone(timezone(timedelta(minutes=offset_minutes)))
    reading = {
        "seq": draw(st.integers(0, 2**63 - 1)),
        "metric": metric.name,
        "value": round(raw, metric.decimals),
        "unit": metric.unit,
        "measured_at": at.isoformat(),
    }
    return reading, at_us


@settings(max_examples=300, deadline=None, database=None)
@given(device_type=st.sampled_from(sorted(DEVICE_TYPES)), data=st.data(), as_batch=st.booleans())
def test_any_valid_reading_survives_the_whole_trip(
    device_type: str, data: st.DataObject, as_batch: bool
) -> None:
    allowed = sorted(DEVICE_TYPES[device_type].metrics)
    drawn = data.draw(st.lists(valid_readings(allowed), min_size=1, max_size=8))
    readings = [r for r, _ in drawn]
    if as_batch or len(readings) > 1:
        payload: dict[str, Any] = {"v": 1, "device_id": DEVICE, "readings": readings}
    else:
        payload = {"v": 1, "device_id": DEVICE, **readings[0]}
    # device -> MQTT bytes -> gateway JSON decode -> Kafka raw record -> validator
    wire = orjson.dumps(payload)
    topic = device_topic(TENANT, DEVICE)
    envelope = RawEnvelope("gw-1", TENANT, DEVICE, (RawMessage(topic, NOW_US, orjson.loads(wire)),))
    envelope = RawEnvelope.from_json(envelope.to_json())

    result = validate_envelope(
        envelope, lookup=_OneDevice(device_type), now_us=NOW_US, limits=LIMITS
    )

    assert result.dead_letters == []
    [batch] = result.batches
    again = ReadingBatch.from_json(batch.to_json())
    assert again == batch
    assert again.metrics == tuple(r["metric"] for r in readings)
    # A 0 is "no signal" for metrics where 0 cannot be a measurement: stored without a value.
    expected = tuple(
        None if r["value"] == 0 and CATALOGUE[r["metric"]].no_signal_zero else r["value"]
        for r in readings
    )
    assert again.values == expected
    assert again.seqs == tuple(r["seq"] for r in readings)
    assert again.measured_at_us == tuple(at_us for _, at_us in drawn)
    assert again.received_at_us == (NOW_US,) * len(readings)
    assert (again.tenant, again.care_unit, again.patient, again.device_id) == (
        TENANT,
        "cardiology",
        "p-prop",
        DEVICE,
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=20), min_size=0, max_size=200))
def test_a_batch_s_time_order_is_numpy_s_stable_argsort(offsets: list[int]) -> None:
    """Python's sort (small batches) and numpy's (uploads) give the order the detectors used
    to get from numpy alone, ties in batch order (few distinct times: many ties)."""
    _assert_numpy_s_stable_argsort(offsets)


def _assert_numpy_s_stable_argsort(offsets: list[int]) -> None:
    import numpy as np

    times = tuple(1_790_000_000_000_000 + o * 1_000_000 for o in offsets)
    n = len(times)
    batch = ReadingBatch(
        "t", "u", "p", "d", ("spo2",) * n, (97.0,) * n, times, tuple(range(n)), times
    )
    expected = np.argsort(np.asarray(times, dtype=np.int64), kind="stable").tolist()
    assert list(batch.time_order()) == expected


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=20), min_size=0, max_size=200),
    st.randoms(use_true_random=False),
)
def test_sorted_and_shuffled_batches_get_the_stable_argsort(offsets: list[int], rng: Any) -> None:
    """The in-order fast path (and the sorts behind it) give numpy's stable argsort both for
    readings already in time order, ties included, and for the same readings shuffled."""
    for order in (sorted(offsets), rng.sample(offsets, len(offsets))):
        _assert_numpy_s_stable_argsort(order)


def test_the_time_order_memo_is_invisible() -> None:
    """The memo changes neither equality, hash, repr nor the record of a batch."""
    times = (T_US + 2, T_US, T_US + 1)
    batch = ReadingBatch(
        "t", "u", "p", "d", ("spo2",) * 3, (97.0, None, 95.5), times, (1, 2, 3), times, "cgm"
    )
    fresh = ReadingBatch(*[getattr(batch, f) for f in (
        "tenant", "care_unit", "patient", "device_id", "metrics", "values", "measured_at_us",
        "seqs", "received_at_us", "device_type",
    )])  # fmt: skip
    before = (repr(batch), batch.to_json(), hash(batch))
    assert batch.time_order() == (1, 2, 0)
    assert batch.time_order() is batch.time_order()  # computed once
    assert (repr(batch), batch.to_json(), hash(batch)) == before
    assert batch == fresh


def test_decoded_values_are_floats_whatever_json_number_they_were() -> None:
    """Values written as floats are kept as they are (the fast path); a whole number, as
    orjson reads it (int), or anything else float() takes is converted as it always was."""
    batch = _reading_batch()
    as_floats = batch.to_obj() | {"value": [72.0, None, 36.6]}
    as_ints = batch.to_obj() | {"value": [72, None, 36.6]}
    for obj in (as_floats, as_ints):
        again = batches_of(orjson.dumps(obj))[0]
        assert again.values == (72.0, None, 36.6)
        assert [type(v) for v in again.values] == [float, type(None), float]
    from_bool = ReadingBatch.from_obj(batch.to_obj() | {"value": [True, None, "36.6"]})
    assert from_bool.values == (1.0, None, 36.6)
    assert [type(v) for v in from_bool.values] == [float, type(None), float]
