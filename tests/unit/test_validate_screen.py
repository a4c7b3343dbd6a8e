"""The validator's quick acceptance against its exact checks: it passes exactly the readings
with a value that the exact checks pass, with the same canonical value to the bit; the rest
("no signal" and refusals) it leaves to the exact checks.

Each field of a generated reading is mostly one that passes (so that many readings pass them
all), else one that fails or sits on an edge: every check is met both ways.
"""

from __future__ import annotations

from collections import Counter
from typing import TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st

from devices import CATALOGUE, DEVICE_TYPES, DeviceBinding, DeviceStatus, RegistryEntry
from streams import ValidationLimits
from streams._payload_fast import PlainReading
from streams._validate import _reading_problem, _Screen

T = TypeVar("T")

OUTCOMES: Counter[str] = Counter()
NOW_US = 1_740_830_400_000_000
DAY_US = 86_400_000_000
LIMITS = ValidationLimits(future_tolerance_us=300_000_000, max_age_us=7 * DAY_US)
LATEST_US = NOW_US + LIMITS.future_tolerance_us
OLDEST_US = NOW_US - LIMITS.max_age_us
BOUND_SINCE_US = [0, NOW_US - 3_600_000_000, NOW_US - DAY_US, NOW_US - 10 * DAY_US]
UNITS = sorted({u for m in CATALOGUE.values() for u in (m.unit, *m.conversions)} | {"kg ", ""})
ANY_VALUE = st.one_of(
    st.sampled_from([0.0, -0.0, 0.4, -0.4, 0.5, 1.5, 2.5, 4.0, 4.5, 19.5, 20.0, 300.0, 300.4]),
    st.floats(allow_nan=False, allow_infinity=False),
)


def _mostly(draw: st.DrawFn, good: st.SearchStrategy[T], other: st.SearchStrategy[T]) -> T:
    """From ``good`` four times in five, else from ``other``."""
    return draw(good if draw(st.integers(min_value=0, max_value=99)) < 80 else other)


def _values_of(metric: str) -> st.SearchStrategy[float]:
    """Around the plausible range, its edges and rounding ties included, in either unit."""
    known = CATALOGUE.get(metric)
    if known is None:
        return ANY_VALUE
    low, high = float(known.plausible_min), float(known.plausible_max)
    edges = [low, high, low - 0.5, high + 0.5, low - 0.05, high + 0.04, low + 0.5, high - 0.5]
    near = st.floats(min_value=low - 1, max_value=high + 1)
    return st.one_of(st.sampled_from(edges), near, near.map(lambda v: 9 * v / 5 + 32))


def _time_since(draw: st.DrawFn, bound_since_us: int) -> int:
    """Within the window, else a microsecond either side of one of its limits, or outside."""
    inside = st.integers(min_value=max(OLDEST_US, bound_since_us), max_value=LATEST_US)
    edges = [t + d for t in (LATEST_US, OLDEST_US, bound_since_us) for d in (-1, 0, 1)]
    too_old = st.integers(min_value=OLDEST_US - DAY_US, max_value=OLDEST_US - 1)
    future = st.integers(min_value=LATEST_US + 1, max_value=LATEST_US + DAY_US)
    unbound = st.integers(min_value=bound_since_us - 3_600_000_000, max_value=bound_since_us - 1)
    outside = st.one_of(st.sampled_from(edges), too_old, future, unbound)
    return _mostly(draw, inside, outside)


@st.composite
def _entry_and_reading(draw: st.DrawFn) -> tuple[RegistryEntry, PlainReading]:
    metric = _mostly(draw, st.sampled_from(sorted(CATALOGUE)), st.just("Heart_rate"))
    senders = sorted(name for name, kind in DEVICE_TYPES.items() if metric in kind.metrics)
    anyone = st.sampled_from([*sorted(DEVICE_TYPES), "toaster"])
    device_type = _mostly(draw, st.sampled_from(senders), anyone) if senders else draw(anyone)
    known = CATALOGUE.get(metric)
    own = [known.unit, *known.conversions] if known else UNITS
    unit = _mostly(draw, st.sampled_from(own), st.sampled_from(UNITS))
    value = _mostly(draw, _values_of(metric), ANY_VALUE)
    bound_since_us = draw(st.sampled_from(BOUND_SINCE_US))
    measured_us = _time_since(draw, bound_since_us)
    no_signal = draw(st.integers(min_value=0, max_value=9)) == 0
    sent = (None if value > 0 else 0.0) if no_signal else value  # the payload contract
    binding = DeviceBinding("wa-0001", "chu-a", "cardiology", "p-1", bound_since_us)
    entry = RegistryEntry("wa-0001", device_type, "chu-a", DeviceStatus.ACTIVE, binding)
    return entry, PlainReading(1, metric, sent, unit, measured_us, no_signal)


@settings(max_examples=5000, deadline=None)
@given(case=_entry_and_reading())
def test_the_quick_acceptance_agrees_with_the_exact_checks(
    case: tuple[RegistryEntry, PlainReading],
) -> None:
    entry, reading = case
    quick = _Screen.of(entry, NOW_US, LIMITS).plain_value(reading)
    reason, outcome = _reading_problem(reading, entry, NOW_US, LIMITS)
    if reason is None and outcome is not None:
        OUTCOMES["with a value"] += 1
        assert quick is not None
        assert float(outcome).hex() == quick.hex()
    else:  # refused, or "no signal"
        OUTCOMES[str(reason or "no signal")] += 1
        assert quick is None


def test_every_outcome_was_exercised() -> None:
    """Runs after the property (file order): each check must have refused some readings."""
    print(f"readings by outcome: {dict(OUTCOMES)}")
    assert OUTCOMES["with a value"] >= 500
    for outcome in ("no signal", "unknown_metric", "metric_not_allowed", "unit_not_allowed",
                    "implausible", "future", "too_old", "before_binding"):  # fmt: skip
        assert OUTCOMES[outcome] >= 10, outcome
