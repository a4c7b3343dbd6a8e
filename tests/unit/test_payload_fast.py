"""The fast payload reader against pydantic: same stored values, same dead letters.

Payloads are generated near the contract (each field valid, at an edge, or of a wrong type;
keys missing or extra; times in every RFC 3339 spelling and some that are not), so both the
fast path and its fall-back to pydantic are exercised; the test counts how often each ran.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from devices import DeviceBinding, RawEnvelope, RawMessage, datetime_to_us, device_topic
from streams import ValidationLimits, validate_envelope
from streams._payload_fast import read_plainly

from .conftest import DictLookup

DEVICE = "wa-0001"
TENANT = "chu-a"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
NOW_US = datetime_to_us(NOW)
LIMITS = ValidationLimits(future_tolerance_us=300_000_000, max_age_us=7 * 86_400_000_000)
LOOKUP = DictLookup([DeviceBinding(DEVICE, TENANT, "cardiology", "p-0123", 0)])
PATHS: Counter[str] = Counter()

_times = st.one_of(
    st.datetimes(
        min_value=datetime(2025, 2, 20), max_value=datetime(2025, 3, 2), timezones=st.just(UTC)
    ).map(lambda d: d.isoformat()),
    st.datetimes(min_value=datetime(2025, 2, 27), max_value=datetime(2025, 3, 2)).map(
        lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    ),
    st.sampled_from(
        [
            "2025-03-01T11:59:00Z", "2025-03-01t11:59:00z", "2025-03-01 11:59:00+01:00",
            "2025-03-01T11:59:00.1234567Z", "2025-03-01T11:59:00-00:00", "2025-02-30T10:00:00Z",
            "2025-03-01T24:00:00Z", "2025-03-01T11:59:60Z", "2025-03-01T11:59:00+24:00",
            "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2025-03-01T11:59:00",
            "1740830340", "", "2025-03-01T11:59:00.Z", "２０２５-03-01T11:59:00Z",
        ]
    ),
    st.integers(),
    st.none(),
)  # fmt: skip
_values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 0.0, -0.0, 72, 72.5, True, False, None, "72", [72]]),
)
# Each field: a valid value most of the time (so whole payloads often pass), else hostile.
_VALID: dict[str, st.SearchStrategy[Any]] = {
    "seq": st.integers(min_value=0, max_value=2**63 - 1),
    "metric": st.sampled_from(["heart_rate", "spo2", "respiration_rate"]),
    "value": st.floats(min_value=0, max_value=300) | st.integers(min_value=0, max_value=300),
    "unit": st.sampled_from(["/min", "%"]),
    "measured_at": _times,
    "status": st.sampled_from(["ok", "no_signal"]),
}
_HOSTILE: dict[str, st.SearchStrategy[Any]] = {
    "seq": st.one_of(
        st.integers(min_value=-2, max_value=2**64), st.sampled_from([True, 1.0, "1", None])
    ),
    "metric": st.sampled_from(["weight", "", "x" * 65, 7, "heart_rate "]),
    "value": _values,
    "unit": st.sampled_from(["kg", "", "u" * 17, None, "[degF]"]),
    "measured_at": _times,
    "status": st.sampled_from(["OK", "", None, 1]),
}
_PRESENT = {"seq": 0.95, "metric": 0.95, "value": 0.9, "unit": 0.95, "measured_at": 0.95,
            "status": 0.3}  # fmt: skip


def _field(draw: st.DrawFn, name: str) -> Any:
    return draw(_VALID[name] if draw(st.integers(0, 99)) < 85 else _HOSTILE[name])


@st.composite
def _reading(draw: st.DrawFn) -> dict[str, Any]:
    reading = {
        name: _field(draw, name)
        for name, chance in _PRESENT.items()
        if draw(st.integers(0, 99)) < chance * 100
    }
    if draw(st.integers(0, 99)) < 3:
        reading["quality"] = "good"  # not in the contract: pydantic refuses the extra key
    return reading


@st.composite
def _payload(draw: st.DrawFn) -> Any:
    head: dict[str, Any] = {
        "v": draw(st.sampled_from([1] * 12 + [2, True, 1.0, "1"])),
        "device_id": draw(st.sampled_from([DEVICE] * 12 + ["wa-0002", "bad id", ""])),
    }
    if draw(st.booleans()):
        return {**head, **draw(_reading())}
    readings = draw(st.lists(_reading(), min_size=0, max_size=4))
    return {**head, "readings": readings}


@settings(max_examples=3000, deadline=None)
@given(payloads=st.lists(_payload(), min_size=1, max_size=3))
def test_the_fast_path_and_pydantic_agree_on_every_payload(payloads: list[Any]) -> None:
    topic = device_topic(TENANT, DEVICE)
    envelope = RawEnvelope(
        "gw-1",
        TENANT,
        DEVICE,
        tuple(RawMessage(topic, NOW_US - 1_000 + i, p) for i, p in enumerate(payloads)),
    )
    for payload in payloads:
        PATHS["fast" if read_plainly(payload) is not None else "pydantic"] += 1
    fast = validate_envelope(envelope, lookup=LOOKUP, now_us=NOW_US, limits=LIMITS)
    slow = validate_envelope(envelope, lookup=LOOKUP, now_us=NOW_US, limits=LIMITS, fast=False)
    assert fast == slow


def test_both_paths_were_exercised() -> None:
    """Runs after the property (file order): a generator that never reached one of the two
    paths would prove nothing about it."""
    print(f"payloads by path: {dict(PATHS)}")
    assert PATHS["fast"] >= 300
    assert PATHS["pydantic"] >= 300


def test_a_plain_payload_is_read_to_the_same_microsecond() -> None:
    payload = {
        "v": 1, "device_id": DEVICE, "seq": 3, "metric": "heart_rate", "value": 72,
        "unit": "/min", "measured_at": "2025-03-01T12:59:58.5+01:00",
    }  # fmt: skip
    read = read_plainly(payload)
    assert read is not None
    device, [reading] = read
    assert device == DEVICE
    assert reading.value == 72.0 and type(reading.value) is float
    assert reading.measured_at_us == datetime_to_us(NOW - timedelta(seconds=1.5))
