"""validate_envelope: raw payloads -> one ReadingBatch in canonical units, or dead letters."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from devices import (
    DeadLetter,
    DeadLetterReason,
    DeviceBinding,
    RawEnvelope,
    RawMessage,
    ReadingBatch,
    datetime_to_us,
    device_topic,
)
from streams import RegistryLookup, ValidationLimits, ValidationResult, validate_envelope

DEVICE = "wa-0001"
TENANT = "chu-a"
TOPIC = device_topic(TENANT, DEVICE)
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
NOW_US = datetime_to_us(NOW)
TOLERANCE = timedelta(seconds=300)
MAX_AGE = timedelta(days=7)
LIMITS = ValidationLimits(
    future_tolerance_us=TOLERANCE // timedelta(microseconds=1),
    max_age_us=MAX_AGE // timedelta(microseconds=1),
)
BINDING = DeviceBinding(DEVICE, TENANT, "cardiology", "p-0123456789abcdef01234567", 0)
RECEIVED_US = NOW_US - 1_000

Reason = DeadLetterReason


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def reading(
    seq: int = 1,
    metric: str = "heart_rate",
    value: Any = 72,
    unit: str = "/min",
    at: datetime | str = NOW - timedelta(seconds=10),
) -> dict[str, Any]:
    return {
        "seq": seq,
        "metric": metric,
        "value": value,
        "unit": unit,
        "measured_at": at if isinstance(at, str) else iso(at),
    }


def single(device: str = DEVICE, **fields: Any) -> dict[str, Any]:
    return {"v": 1, "device_id": device, **reading(**fields)}


def batch(*readings: dict[str, Any], device: str = DEVICE) -> dict[str, Any]:
    return {"v": 1, "device_id": device, "readings": list(readings)}


def envelope(*payloads: Any, device: str = DEVICE) -> RawEnvelope:
    topic = device_topic(TENANT, device)
    return RawEnvelope(
        "gw-1",
        TENANT,
        device,
        tuple(RawMessage(topic, RECEIVED_US + i, p) for i, p in enumerate(payloads)),
    )


@pytest.fixture
def lookup(make_lookup: Callable[[Iterable[DeviceBinding]], RegistryLookup]) -> RegistryLookup:
    return make_lookup([BINDING])


@pytest.fixture
def run(lookup: RegistryLookup) -> Callable[..., ValidationResult]:
    def _run(env: RawEnvelope) -> ValidationResult:
        return validate_envelope(env, lookup=lookup, now_us=NOW_US, limits=LIMITS)

    return _run


def only_dead_letter(result: ValidationResult) -> DeadLetter:
    assert result.batches == []
    assert len(result.dead_letters) == 1
    return result.dead_letters[0]


# -- accepted readings -------------------------------------------------------------------


def test_valid_single_payload_becomes_one_reading_batch(
    run: Callable[..., ValidationResult],
) -> None:
    at = NOW - timedelta(seconds=10)
    result = run(envelope(single(seq=7, value=72, at=at)))
    assert result.dead_letters == []
    assert result.batches == [
        ReadingBatch(
            TENANT,
            "cardiology",
            BINDING.patient,
            DEVICE,
            ("heart_rate",),
            (72.0,),
            (datetime_to_us(at),),
            (7,),
            (RECEIVED_US,),
            "bedside_monitor",
        )
    ]


def test_valid_batch_payload_is_normalised_to_canonical_units(
    run: Callable[..., ValidationResult],
) -> None:
    t1, t2, t3 = (NOW - timedelta(seconds=s) for s in (30, 20, 10))
    payload = batch(
        reading(seq=1, metric="body_temperature", value=98.6, unit="[degF]", at=t1),
        reading(seq=2, metric="systolic_bp", value=16, unit="kPa", at=t2),
        reading(seq=3, metric="spo2", value=96.6, unit="%", at=t3),
    )
    result = run(envelope(payload))
    assert result.dead_letters == []
    assert len(result.batches) == 1
    out = result.batches[0]
    assert out.metrics == ("body_temperature", "systolic_bp", "spo2")
    assert out.values == (37.0, 120.0, 97.0)
    assert out.measured_at_us == tuple(datetime_to_us(t) for t in (t1, t2, t3))
    assert out.seqs == (1, 2, 3)
    assert out.received_at_us == (RECEIVED_US,) * 3


def test_all_messages_of_an_envelope_share_one_batch(run: Callable[..., ValidationResult]) -> None:
    result = run(
        envelope(
            single(seq=1, value=70),
            batch(reading(seq=2, value=71), reading(seq=3, metric="spo2", value=98, unit="%")),
        )
    )
    assert result.dead_letters == []
    assert len(result.batches) == 1
    out = result.batches[0]
    assert out.seqs == (1, 2, 3)
    assert out.values == (70.0, 71.0, 98.0)
    assert out.received_at_us == (RECEIVED_US, RECEIVED_US + 1, RECEIVED_US + 1)


def test_measured_at_with_an_offset_is_converted_to_utc(
    run: Callable[..., ValidationResult],
) -> None:
    result = run(envelope(single(at="2025-03-01T13:59:30.250000+02:00")))
    assert result.dead_letters == []
    expected = datetime(2025, 3, 1, 11, 59, 30, 250_000, tzinfo=UTC)
    assert result.batches[0].measured_at_us == (datetime_to_us(expected),)


def test_time_window_boundaries_are_accepted(run: Callable[..., ValidationResult]) -> None:
    result = run(
        envelope(batch(reading(seq=1, at=NOW + TOLERANCE), reading(seq=2, at=NOW - MAX_AGE)))
    )
    assert result.dead_letters == []
    assert result.batches[0].seqs == (1, 2)


# -- dead letters --------------------------------------------------------------------------


def _without(payload: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != key}


@pytest.mark.parametrize(
    ("payload", "reason", "detail_parts"),
    [
        pytest.param({**single(), "v": 2}, Reason.UNKNOWN_VERSION, ["2", "supported"], id="v=2"),
        pytest.param({**single(), "v": True}, Reason.UNKNOWN_VERSION, ["True"], id="v=True"),
        pytest.param({**single(), "v": "1"}, Reason.UNKNOWN_VERSION, ["'1'"], id="v='1'"),
        pytest.param({**batch(reading()), "v": 0}, Reason.UNKNOWN_VERSION, ["0"], id="batch-v=0"),
        pytest.param(_without(single(), "v"), Reason.SCHEMA, ["version", "'v'"], id="no-v"),
        pytest.param(_without(single(), "unit"), Reason.SCHEMA, ["unit", "required"], id="no-unit"),
        pytest.param(
            _without(single(), "device_id"), Reason.SCHEMA, ["device_id"], id="no-device-id"
        ),
        pytest.param(
            {**single(), "firmware": "1.2.3"}, Reason.SCHEMA, ["firmware", "Extra"], id="extra"
        ),
        pytest.param(
            batch({**reading(), "quality": 1}),
            Reason.SCHEMA,
            ["readings.0.quality", "Extra"],
            id="extra-in-batch-reading",
        ),
        pytest.param(
            {**batch(reading()), "note": "x"}, Reason.SCHEMA, ["note"], id="extra-in-batch"
        ),
        pytest.param([1, 2], Reason.SCHEMA, ["JSON object", "list"], id="list"),
        pytest.param("hello", Reason.SCHEMA, ["JSON object", "str"], id="string"),
        pytest.param(42, Reason.SCHEMA, ["JSON object", "int"], id="number"),
        pytest.param(None, Reason.SCHEMA, ["JSON object", "NoneType"], id="null"),
        pytest.param(single(value="high"), Reason.SCHEMA, ["value"], id="string-value"),
        pytest.param(single(value=float("nan")), Reason.SCHEMA, ["value", "finite"], id="nan"),
        pytest.param(single(value=float("inf")), Reason.SCHEMA, ["value", "finite"], id="inf"),
        pytest.param(single(value=None), Reason.SCHEMA, ["value"], id="null-value"),
        pytest.param(single(seq=-1), Reason.SCHEMA, ["seq"], id="negative-seq"),
        pytest.param(single(seq=2**63), Reason.SCHEMA, ["seq"], id="seq-too-big"),
        pytest.param(
            single(at="2025-03-01T11:59:50"), Reason.SCHEMA, ["measured_at"], id="naive-time"
        ),
        pytest.param(single(at="yesterday"), Reason.SCHEMA, ["measured_at"], id="unparsable-time"),
        pytest.param(batch(), Reason.SCHEMA, ["readings"], id="empty-batch"),
        pytest.param(
            {"v": 1, "device_id": DEVICE, "readings": "many"},
            Reason.SCHEMA,
            ["readings"],
            id="readings-not-a-list",
        ),
        pytest.param(
            single(device="bad id!"), Reason.SCHEMA, ["device_id"], id="device-id-pattern"
        ),
    ],
)
def test_message_level_dead_letters(
    run: Callable[..., ValidationResult],
    payload: Any,
    reason: DeadLetterReason,
    detail_parts: list[str],
) -> None:
    letter = only_dead_letter(run(envelope(payload)))
    assert letter.reason is reason
    for part in detail_parts:
        assert part in letter.detail
    assert letter.stage == "validate"
    assert letter.mqtt_topic == TOPIC
    assert letter.device_id == DEVICE
    assert letter.received_at_us == RECEIVED_US
    if payload == payload:  # NaN payloads are not equal to themselves: orjson writes null
        assert letter.raw == orjson.dumps(payload).decode()


@pytest.mark.parametrize("version", [[1], {"major": 1}])
def test_unhashable_version_is_a_dead_letter_not_a_crash(
    run: Callable[..., ValidationResult], version: Any
) -> None:
    """A JSON array or object as ``v`` must be dead-lettered like any other bad version."""
    letter = only_dead_letter(run(envelope({**single(), "v": version})))
    assert letter.reason in {Reason.UNKNOWN_VERSION, Reason.SCHEMA}
    assert "v" in letter.detail


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("72", id="numeric-string"),
        pytest.param(True, id="boolean"),
    ],
)
def test_value_must_be_a_json_number(run: Callable[..., ValidationResult], value: Any) -> None:
    """The payload contract is exact: a string or a boolean is not a measurement."""
    letter = only_dead_letter(run(envelope(single(value=value))))
    assert letter.reason is Reason.SCHEMA
    assert "value" in letter.detail


def test_device_mismatch(run: Callable[..., ValidationResult]) -> None:
    letter = only_dead_letter(run(envelope(single(device="other-device"))))
    assert letter.reason is Reason.DEVICE_MISMATCH
    assert "'other-device'" in letter.detail
    assert f"'{DEVICE}'" in letter.detail
    assert letter.device_id == DEVICE


def test_tenant_mismatch_is_dead_lettered(run: Callable[..., ValidationResult]) -> None:
    topic = device_topic("chu-b", DEVICE)
    env = RawEnvelope("gw-1", "chu-b", DEVICE, (RawMessage(topic, RECEIVED_US, single()),))
    result = run(env)
    letter = only_dead_letter(result)
    assert letter.reason is Reason.TENANT_MISMATCH
    assert "'chu-a'" in letter.detail and "'chu-b'" in letter.detail
    assert result.batches == []


def test_unknown_device(make_lookup: Callable[[Iterable[DeviceBinding]], RegistryLookup]) -> None:
    env = envelope(single(device="ghost-1"), device="ghost-1")
    result = validate_envelope(env, lookup=make_lookup([BINDING]), now_us=NOW_US, limits=LIMITS)
    letter = only_dead_letter(result)
    assert letter.reason is Reason.UNKNOWN_DEVICE
    assert "'ghost-1'" in letter.detail
    assert "veille devices add" in letter.detail
    assert letter.device_id == "ghost-1"


@pytest.mark.parametrize(
    ("fields", "reason", "detail_parts"),
    [
        pytest.param(
            {"metric": "glucose", "unit": "mg/dL"},
            Reason.UNKNOWN_METRIC,
            ["'glucose'", "catalogue"],
            id="unknown-metric",
        ),
        pytest.param(
            {"unit": "bpm"},
            Reason.UNIT_NOT_ALLOWED,
            ["'bpm'", "heart_rate", "/min"],
            id="unit-not-allowed",
        ),
        pytest.param(
            {"metric": "body_temperature", "value": 37, "unit": "K"},
            Reason.UNIT_NOT_ALLOWED,
            ["'K'", "Cel", "[degF]"],
            id="unit-not-allowed-lists-conversions",
        ),
        pytest.param(
            {"value": 301},
            Reason.IMPLAUSIBLE,
            ["heart_rate 301.0 /min", "[20, 300]"],
            id="implausible-high",
        ),
        pytest.param(
            {"metric": "spo2", "value": 49, "unit": "%"},
            Reason.IMPLAUSIBLE,
            ["spo2 49.0 %", "[50, 100]"],
            id="implausible-low",
        ),
        pytest.param(
            {"metric": "body_temperature", "value": 212, "unit": "[degF]"},
            Reason.IMPLAUSIBLE,
            ["body_temperature 100.0 Cel", "[25, 45]"],
            id="implausible-after-conversion",
        ),
        pytest.param(
            {"at": NOW + TOLERANCE + timedelta(seconds=1)},
            Reason.FUTURE,
            ["301 s in the future", "clock"],
            id="future",
        ),
        pytest.param(
            {"at": NOW + TOLERANCE + timedelta(microseconds=1)},
            Reason.FUTURE,
            ["in the future"],
            id="future-by-one-microsecond",
        ),
        pytest.param(
            {"at": NOW - MAX_AGE - timedelta(seconds=1)},
            Reason.TOO_OLD,
            ["604801 s old"],
            id="too-old",
        ),
        pytest.param(
            {"at": NOW - MAX_AGE - timedelta(microseconds=1)},
            Reason.TOO_OLD,
            ["old"],
            id="too-old-by-one-microsecond",
        ),
    ],
)
def test_reading_level_dead_letters(
    run: Callable[..., ValidationResult],
    fields: dict[str, Any],
    reason: DeadLetterReason,
    detail_parts: list[str],
) -> None:
    payload = single(**fields)
    letter = only_dead_letter(run(envelope(payload)))
    assert letter.reason is reason
    for part in detail_parts:
        assert part in letter.detail
    assert letter.stage == "validate"
    assert letter.device_id == DEVICE
    assert letter.mqtt_topic == TOPIC
    assert orjson.loads(letter.raw) == payload


def test_valid_readings_next_to_an_invalid_one_are_kept(
    run: Callable[..., ValidationResult],
) -> None:
    bad = reading(seq=2, metric="spo2", value=30, unit="%")
    payload = batch(
        reading(seq=1, value=80),
        bad,
        reading(seq=3, metric="spo2", value=97, unit="%"),
        reading(seq=4, metric="glucose", unit="mg/dL"),
        reading(seq=5, value=81),
    )
    result = run(envelope(payload))
    assert len(result.batches) == 1
    assert result.batches[0].seqs == (1, 3, 5)
    assert result.batches[0].values == (80.0, 97.0, 81.0)
    reasons = [d.reason for d in result.dead_letters]
    assert reasons == [Reason.IMPLAUSIBLE, Reason.UNKNOWN_METRIC]
    # a reading-level dead letter keeps the reading, not the whole message
    assert orjson.loads(result.dead_letters[0].raw) == bad


def test_a_bad_message_does_not_drop_the_good_messages_of_its_envelope(
    run: Callable[..., ValidationResult],
) -> None:
    result = run(envelope(single(seq=1), {**single(seq=2), "v": 9}, "garbage", single(seq=3)))
    assert [b.seqs for b in result.batches] == [(1, 3)]
    assert [d.reason for d in result.dead_letters] == [Reason.UNKNOWN_VERSION, Reason.SCHEMA]
    assert [d.received_at_us for d in result.dead_letters] == [RECEIVED_US + 1, RECEIVED_US + 2]


def test_envelope_with_only_invalid_readings_has_no_batch(
    run: Callable[..., ValidationResult],
) -> None:
    result = run(envelope(batch(reading(value=500), reading(unit="bpm"))))
    assert result.batches == []
    assert [d.reason for d in result.dead_letters] == [
        Reason.IMPLAUSIBLE,
        Reason.UNIT_NOT_ALLOWED,
    ]


# -- dead-letter ids ------------------------------------------------------------------------


def _bad_envelope() -> RawEnvelope:
    return envelope(
        {**single(), "v": 2},
        batch(reading(seq=1, value=500), reading(seq=1, value=500)),  # identical readings
    )


def test_dead_letter_ids_are_deterministic(run: Callable[..., ValidationResult]) -> None:
    first = run(_bad_envelope())
    again = run(_bad_envelope())
    assert len(first.dead_letters) == 3
    assert first.dead_letters == again.dead_letters
    assert [d.dead_letter_id for d in first.dead_letters] == [
        d.dead_letter_id for d in again.dead_letters
    ]


def test_a_message_carried_again_in_another_record_is_the_same_dead_letter(
    run: Callable[..., ValidationResult],
) -> None:
    """The producer may write a raw record twice (a retry across a stalled broker, without
    idempotence) and the broker may redeliver a message the gateway then puts in a new record,
    next to other messages and with a later arrival time: still one dead letter each."""
    bad = _bad_envelope()
    alone = run(bad)
    moved = RawEnvelope(
        bad.gateway_id,
        bad.tenant,
        bad.device_id,
        (RawMessage(bad.messages[0].mqtt_topic, RECEIVED_US - 5, single(seq=7)),)
        + tuple(
            RawMessage(m.mqtt_topic, m.received_at_us + 1_000, m.payload) for m in bad.messages
        ),
    )
    again = run(moved)
    assert [d.dead_letter_id for d in again.dead_letters] == [
        d.dead_letter_id for d in alone.dead_letters
    ]
    assert len(again.batches) == 1  # the good message in front was kept


def test_different_messages_with_the_same_bad_reading_are_different_dead_letters(
    run: Callable[..., ValidationResult],
) -> None:
    """Only the device's message names a dead letter: a reading it sends again inside a new
    batch is a new input (the reading's own natural key is checked where readings are stored)."""
    bad = reading(seq=1, value=500)
    [first] = run(envelope(batch(bad, reading(seq=2)))).dead_letters
    [second] = run(envelope(batch(bad, reading(seq=3)))).dead_letters
    assert first.raw == second.raw
    assert first.dead_letter_id != second.dead_letter_id


def test_identical_readings_at_different_positions_get_distinct_ids(
    run: Callable[..., ValidationResult],
) -> None:
    letters = run(_bad_envelope()).dead_letters
    assert len({d.dead_letter_id for d in letters}) == len(letters)
    assert letters[1].raw == letters[2].raw


def test_dead_letter_text_is_storable(run: Callable[..., ValidationResult]) -> None:
    letter = only_dead_letter(run(envelope(single(metric="heart\x00rate"))))
    assert letter.reason is Reason.UNKNOWN_METRIC
    assert "\x00" not in letter.detail
    assert "\x00" not in letter.raw


# -- hostile measurement times --------------------------------------------------------------


@pytest.mark.parametrize(
    "at",
    [
        pytest.param(1_740_830_390, id="unix-seconds"),
        pytest.param("1740830390", id="unix-seconds-text"),
        pytest.param(1_740_830_390_000, id="unix-milliseconds"),
        pytest.param("2025-03-01T11:59:50", id="no-offset"),
        pytest.param("2025-03-01T11:59Z", id="no-seconds"),
        pytest.param("2025-03-01", id="date-only"),
        pytest.param("2025-03-01T11:59:50Z\n", id="trailing-newline"),
        pytest.param("２０２５-03-01T11:59:50Z", id="fullwidth-digits"),
        pytest.param("2025-03-01T11:59:50+0000", id="offset-without-colon"),
    ],
)
def test_measured_at_must_be_rfc3339_text(run: Callable[..., ValidationResult], at: Any) -> None:
    """pydantic alone reads numbers as Unix time: a guess Veille refuses."""
    letter = only_dead_letter(run(envelope({**single(), "measured_at": at})))
    assert letter.reason is Reason.SCHEMA
    assert "measured_at" in letter.detail
    assert "RFC 3339" in letter.detail


@pytest.mark.parametrize(
    "at", ["2025-03-01t11:59:50z", "2025-03-01 11:59:50Z", "2025-03-01T12:59:50.123456789+01:00"]
)
def test_rfc3339_variants_are_accepted(run: Callable[..., ValidationResult], at: str) -> None:
    [accepted] = run(envelope(single(at=at))).batches
    assert accepted.measured_at_us[0] // 1_000_000 == (NOW_US - 10_000_000) // 1_000_000


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_time_beyond_the_calendar_in_utc_is_a_dead_letter_not_a_crash(
    run: Callable[..., ValidationResult], at: str
) -> None:
    letter = only_dead_letter(run(envelope(single(at=at))))
    assert letter.reason is Reason.SCHEMA
    assert "years 1 to 9999" in letter.detail


def test_a_payload_that_cannot_be_reencoded_is_still_dead_lettered(
    run: Callable[..., ValidationResult],
) -> None:
    """Only another producer than the gateway could write it; the stage must not stop."""
    letter = only_dead_letter(run(envelope({**single(), "v": 10**30})))
    assert letter.reason is Reason.UNKNOWN_VERSION
    assert "cannot be written as JSON" in letter.raw
