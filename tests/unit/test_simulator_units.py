"""Device units: a value shown in the device's unit converts back to the intended one."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices import CATALOGUE, DEVICE_TYPES
from devices.simulator import DEVICE_SPECS, METRIC_SIGNAL
from devices.simulator._units import DISPLAY_DECIMALS, to_device_unit

CONVERTED = [(m, u) for m in CATALOGUE.values() for u in m.conversions]


@pytest.mark.parametrize(("metric", "unit"), CONVERTED, ids=[f"{m.name}-{u}" for m, u in CONVERTED])
@given(fraction=st.floats(min_value=0.0, max_value=1.0))
def test_round_trip_lands_on_the_canonical_value(metric, unit, fraction: float) -> None:  # type: ignore[no-untyped-def]
    span = metric.plausible_max - metric.plausible_min
    canonical = round(metric.plausible_min + fraction * span, metric.decimals)
    (shown,) = to_device_unit(metric, np.array([canonical]), unit)
    assert metric.to_canonical(shown, unit) == canonical


def test_devices_show_the_usual_precision_of_their_unit() -> None:
    temperature = CATALOGUE["body_temperature"]
    assert to_device_unit(temperature, np.array([37.0, 38.6]), "[degF]") == [98.6, 101.5]
    glucose = CATALOGUE["blood_glucose"]
    assert to_device_unit(glucose, np.array([7.0]), "mg/dL") == [126]
    assert isinstance(to_device_unit(glucose, np.array([7.0]), "mg/dL")[0], int)
    heart = CATALOGUE["heart_rate"]
    assert to_device_unit(heart, np.array([72.0]), "/min") == [72]
    assert set(DISPLAY_DECIMALS) >= {u for _, u in CONVERTED}


def test_device_specs_agree_with_the_device_types() -> None:
    assert set(DEVICE_SPECS) == set(DEVICE_TYPES)
    for name, spec in DEVICE_SPECS.items():
        assert {m.metric for m in spec.metrics} <= DEVICE_TYPES[name].metrics
        for metric, choices in spec.units.items():
            assert choices[0][0] == CATALOGUE[metric].unit
            assert all(CATALOGUE[metric].accepts(u) for u, _ in choices)
            assert sum(share for _, share in choices) == pytest.approx(1.0)
    assert len({s.code for s in DEVICE_SPECS.values()}) == len(DEVICE_SPECS)
    assert all(m.metric in METRIC_SIGNAL for s in DEVICE_SPECS.values() for m in s.metrics)
