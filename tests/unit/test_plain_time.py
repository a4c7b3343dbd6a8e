"""The validator's time reader against the exact one: the same microseconds, the same refusals.

``plain_time_us`` reads common spellings by tables and a per-minute cache; ``_exact_us`` is the
regex, ``datetime.fromisoformat`` and ``datetime_to_us`` it replaced. Every text must get the
same answer from both, at the edges of minutes, days, years and offsets most of all.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices import datetime_to_us
from streams._plain_time import _SECONDS, _ZONES, _exact_us, _minute_us, plain_time_us

EDGES = [
    # minute, hour, day, month and year boundaries, in UTC and across an offset
    "2025-03-01T11:59:59Z", "2025-03-01T12:00:00Z", "2025-03-01T23:59:59.999999Z",
    "2025-03-02T00:00:00Z", "2025-12-31T23:59:59+00:00", "2026-01-01T00:00:00Z",
    "2026-01-01T00:30:00+01:00", "2025-12-31T23:30:00-01:00", "2025-12-31T23:59:59.5-14:00",
    "2024-02-29T12:00:00Z", "2025-02-29T12:00:00Z", "2100-02-29T00:00:00Z",
    "2000-02-29T00:00:00Z", "2025-04-31T00:00:00Z", "2025-13-01T00:00:00Z",
    "2025-00-10T00:00:00Z", "2025-01-00T00:00:00Z",
    # leap seconds and hour 24 are refused today
    "2016-12-31T23:59:60Z", "2016-12-31T23:59:60.5Z", "2025-03-01T24:00:00Z",
    "2025-03-01T23:60:00Z", "2025-03-01T11:59:61Z",
    # offsets: the quarter hours, -00:00, and what only the exact way takes or refuses
    "2025-03-01T11:59:00+05:30", "2025-03-01T11:59:00+05:45", "2025-03-01T11:59:00-09:30",
    "2025-03-01T11:59:00+23:45", "2025-03-01T11:59:00-23:59", "2025-03-01T11:59:00+24:00",
    "2025-03-01T11:59:00-00:00", "2025-03-01T11:59:00+01:60", "2025-03-01T11:59:00+01:07",
    "2025-03-01T11:59:00+1:00", "2025-03-01T11:59:00+0100", "2025-03-01T11:59:00UTC",
    # fractions: one to six digits, none, seven, a lone point, digits that are not ASCII
    "2025-03-01T11:59:00.1Z", "2025-03-01T11:59:00.12Z", "2025-03-01T11:59:00.123456Z",
    "2025-03-01T11:59:00.000001+01:00", "2025-03-01T11:59:00.1234567Z",
    "2025-03-01T11:59:00.Z", "2025-03-01T11:59:00.+01:00", "2025-03-01T11:59:00.１Z",
    "2025-03-01T11:59:0１Z", "2025-03-01T11:59:00.12a4Z", "2025-03-01T11:59:00.-1Z",
    # spellings left to pydantic, the ends of the calendar, and no time at all
    "2025-03-01t11:59:00Z", "2025-03-01T11:59:00z", "2025-03-01 11:59:00Z",
    "2025-03-01T11:59:00", "2025-03-01T11:59Z", "2025-03-01T11:59:00ZZ",
    "0001-01-01T00:00:00Z", "0002-01-01T00:00:00Z", "0002-01-01T00:00:00+14:00",
    "9998-12-31T23:59:59-14:00", "9999-01-01T00:00:00Z", "２０２５-03-01T11:59:00Z",
    "2025-03-01T11:59:00Z\n", " 2025-03-01T11:59:00Z", "", "Z", ":00Z", "1740830340",
]  # fmt: skip


@pytest.mark.parametrize("text", EDGES)
def test_edges_read_as_the_exact_reader_reads_them(text: str) -> None:
    _minute_us.cache_clear()
    first = plain_time_us(text)
    again = plain_time_us(text)  # from the cache this time
    assert first == again == _exact_us(text)


def test_the_exact_reader_refuses_leap_seconds_and_takes_odd_offsets() -> None:
    """What the edges above are held to, spelled out."""
    assert _exact_us("2016-12-31T23:59:60Z") is None
    assert _exact_us("2025-03-01T24:00:00Z") is None
    assert _exact_us("2025-03-01T11:59:00+24:00") is None
    assert _exact_us("2025-03-01T11:59:00+01:60") == plain_time_us("2025-03-01T11:59:00+02:00")
    noon = datetime_to_us(datetime(2025, 3, 1, 12, tzinfo=UTC))
    assert plain_time_us("2025-03-01T12:00:00Z") == noon
    assert plain_time_us("2025-03-01T13:00:00.5+01:00") == noon + 500_000
    assert plain_time_us("2025-03-01T11:59:59.000001Z") == noon - 999_999


def test_the_tables_are_fromisoformats_own_values() -> None:
    base = datetime(2025, 3, 1, 12, 0)
    for zone, offset_us in _ZONES.items():
        parsed = datetime.fromisoformat(f"2025-03-01T12:00:00{zone}")
        assert parsed.utcoffset() == timedelta(microseconds=offset_us), zone
    for second, us in _SECONDS.items():
        assert datetime.fromisoformat(f"2025-03-01T12:00{second}") == base + timedelta(
            microseconds=us
        )


def test_a_full_cache_stays_bounded_and_right() -> None:
    _minute_us.cache_clear()
    maxsize = _minute_us.cache_info().maxsize
    assert maxsize is not None
    start = datetime(2025, 3, 1, tzinfo=UTC)
    for minute in range(maxsize + 100):
        at = start + timedelta(minutes=minute, seconds=minute % 60)
        assert plain_time_us(at.strftime("%Y-%m-%dT%H:%M:%SZ")) == datetime_to_us(at)
    assert _minute_us.cache_info().currsize == maxsize
    # the first minutes left the cache and come back right
    assert plain_time_us("2025-03-01T00:00:07+01:00") == datetime_to_us(
        start + timedelta(seconds=7, hours=-1)
    )


def test_one_minute_cached_from_one_offset_serves_every_other() -> None:
    """The cache holds the minute as written; each reading's own offset applies after."""
    _minute_us.cache_clear()
    local = datetime(2025, 3, 1, 0, 30, 15)
    for hours in (0, 1, -1, 5.5, -9.5, 14, -14, 23.75, -23.75):
        zone = timezone(timedelta(hours=hours))
        text = local.replace(tzinfo=zone).isoformat()
        assert plain_time_us(text) == datetime_to_us(local.replace(tzinfo=zone)), text
    assert _minute_us.cache_info().currsize == 1


_offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
_digits = st.text(alphabet="0123456789", min_size=0, max_size=7)


@settings(max_examples=3000, deadline=None)
@given(
    at=st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31, 23, 59, 59)),
    zone=st.one_of(st.just(UTC), _offsets),
    digits=_digits,
    zulu=st.booleans(),
)
def test_generated_times_read_as_the_exact_reader_reads_them(
    at: datetime, zone: timezone, digits: str, zulu: bool
) -> None:
    text = at.replace(tzinfo=zone, microsecond=0).isoformat()
    if zulu and zone is UTC:
        text = text.replace("+00:00", "Z")
    if digits:  # any number of fraction digits, seven included
        text = f"{text[:19]}.{digits}{text[19:]}"
    assert plain_time_us(text) == _exact_us(text)


@settings(max_examples=3000, deadline=None)
@given(
    at=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    spelling=st.sampled_from(["%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%f+05:30"]),
    position=st.integers(min_value=0, max_value=31),
    char=st.sampled_from("0123456789-:T.Z+zt 6\n\u0660"),
    change=st.sampled_from(["replace", "insert", "delete"]),
)
def test_near_miss_texts_read_as_the_exact_reader_reads_them(
    at: datetime, spelling: str, position: int, char: str, change: str
) -> None:
    """A valid time with one character replaced, added or taken away."""
    text = at.strftime(spelling)
    cut = position % (len(text) + 1)
    rest = text[cut + 1 :] if change != "insert" else text[cut:]
    text = text[:cut] + (char if change != "delete" else "") + rest
    assert plain_time_us(text) == _exact_us(text)
