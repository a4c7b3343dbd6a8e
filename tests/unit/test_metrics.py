"""The metric catalogue: unit conversions, rounding and plausible ranges, with exact values."""

from __future__ import annotations

import pytest

from devices import CATALOGUE, Metric, UnitConversion, metric_named

# name: (LOINC, canonical unit, plausible min, plausible max, decimals, converted units)
EXPECTED = {
    "heart_rate": ("8867-4", "/min", 20, 300, 0, ()),
    "spo2": ("59408-5", "%", 50, 100, 0, ()),
    "respiration_rate": ("9279-1", "/min", 2, 80, 0, ()),
    "systolic_bp": ("8480-6", "mm[Hg]", 40, 300, 0, ("kPa",)),
    "diastolic_bp": ("8462-4", "mm[Hg]", 15, 200, 0, ("kPa",)),
    "body_temperature": ("8310-5", "Cel", 25, 45, 1, ("[degF]",)),
    "pulse_rate": ("8889-8", "/min", 20, 300, 0, ()),
    "mean_bp": ("8478-0", "mm[Hg]", 20, 250, 0, ("kPa",)),
    "arterial_systolic_bp": ("76215-3", "mm[Hg]", 40, 300, 0, ("kPa",)),
    "arterial_diastolic_bp": ("76213-8", "mm[Hg]", 15, 200, 0, ("kPa",)),
    "arterial_mean_bp": ("76214-6", "mm[Hg]", 20, 250, 0, ("kPa",)),
    "skin_temperature": ("39106-0", "Cel", 15, 45, 1, ("[degF]",)),
    "blood_glucose": ("14743-9", "mmol/L", 0.5, 40, 1, ("mg/dL",)),
    "interstitial_glucose": ("105272-9", "mmol/L", 0.5, 40, 1, ("mg/dL",)),
    "body_weight": ("29463-7", "kg", 0.3, 500, 1, ("[lb_av]", "g")),
    "step_count": ("55423-8", "{steps}", 0, 100_000, 0, ()),
    "consciousness": ("67775-7", "{ACVPU}", 0, 4, 0, ()),
    "inhaled_oxygen_flow": ("3151-8", "L/min", 0, 70, 1, ()),
}
METRICS = sorted(CATALOGUE)


def test_catalogue_holds_exactly_the_expected_metrics() -> None:
    assert set(CATALOGUE) == set(EXPECTED)
    for name, (loinc, unit, low, high, decimals, converted) in EXPECTED.items():
        metric = CATALOGUE[name]
        assert metric.name == name
        assert (metric.loinc, metric.unit) == (loinc, unit)
        assert (metric.plausible_min, metric.plausible_max) == (low, high)
        assert metric.decimals == decimals
        assert tuple(metric.conversions) == converted


def test_metric_named_finds_catalogue_entries_and_nothing_else() -> None:
    assert metric_named("heart_rate") is CATALOGUE["heart_rate"]
    assert metric_named("glucose") is None
    assert metric_named("Heart_Rate") is None
    assert metric_named("") is None


def test_unit_conversion_is_an_affine_map() -> None:
    assert UnitConversion(2.0, 1.0).to_canonical(3.0) == 7.0
    assert UnitConversion(0.5).to_canonical(10.0) == 5.0  # offset defaults to 0


@pytest.mark.parametrize("metric", ["systolic_bp", "diastolic_bp"])
@pytest.mark.parametrize(
    ("kpa", "mmhg"),
    [
        (16, 120.0),  # 120.0098... rounds to 120
        (16.0, 120.0),
        (10, 75.0),  # 75.006
        (5, 38.0),  # 37.503 -> 38
        (13.3, 100.0),  # 99.758 -> 100
        (20, 150.0),  # 150.012
        (26.7, 200.0),  # 200.266
        (40, 300.0),  # 300.025
        (0, 0.0),
    ],
)
def test_kpa_converts_to_mmhg_rounded_to_whole_millimetres(
    metric: str, kpa: float, mmhg: float
) -> None:
    converted = CATALOGUE[metric].to_canonical(kpa, "kPa")
    assert converted == mmhg
    assert isinstance(converted, float)


def test_kpa_factor_is_the_exact_physical_constant() -> None:
    # 1 kPa = 1000 / 133.322387415 mm[Hg]
    factor = CATALOGUE["systolic_bp"].conversions["kPa"].to_canonical(1.0)
    assert factor == pytest.approx(1000 / 133.322387415, rel=1e-9)


@pytest.mark.parametrize(
    ("fahrenheit", "celsius"),
    [
        (98.6, 37.0),
        (212, 100.0),  # converts; plausibility is a separate question
        (32, 0.0),
        (-40, -40.0),
        (100.4, 38.0),
        (96.8, 36.0),
        (104, 40.0),
        (101.3, 38.5),  # 38.5 exactly
        (99.5, 37.5),
        (113, 45.0),
        (77, 25.0),
    ],
)
def test_fahrenheit_converts_to_celsius_rounded_to_a_tenth(
    fahrenheit: float, celsius: float
) -> None:
    assert CATALOGUE["body_temperature"].to_canonical(fahrenheit, "[degF]") == celsius


def test_conversion_and_plausibility_are_separate() -> None:
    temperature = CATALOGUE["body_temperature"]
    boiling = temperature.to_canonical(212, "[degF]")
    assert boiling == 100.0
    assert not temperature.is_plausible(boiling)


@pytest.mark.parametrize(
    ("metric", "value", "expected"),
    [
        ("heart_rate", 72.4, 72.0),
        ("heart_rate", 72.6, 73.0),
        ("heart_rate", 72, 72.0),
        ("spo2", 96.9, 97.0),
        ("respiration_rate", 15.2, 15.0),
        ("systolic_bp", 121.7, 122.0),
        ("diastolic_bp", 80.3, 80.0),
        ("body_temperature", 37.04, 37.0),
        ("body_temperature", 37.06, 37.1),
        ("body_temperature", 36.84, 36.8),
        ("body_temperature", 38.5, 38.5),
    ],
)
def test_canonical_values_are_rounded_to_the_metric_precision(
    metric: str, value: float, expected: float
) -> None:
    assert CATALOGUE[metric].to_canonical(value, CATALOGUE[metric].unit) == expected


def test_converted_values_are_rounded_after_conversion() -> None:
    # 98.7 degF = 37.0555... Cel: rounding happens on the canonical value, not the input.
    assert CATALOGUE["body_temperature"].to_canonical(98.7, "[degF]") == 37.1
    # 16.1 kPa = 120.76 mm[Hg] -> 121
    assert CATALOGUE["systolic_bp"].to_canonical(16.1, "kPa") == 121.0


def _step(metric: Metric) -> float:
    return 10.0**-metric.decimals


@pytest.mark.parametrize("name", METRICS)
def test_plausible_range_boundaries_are_inclusive(name: str) -> None:
    metric = CATALOGUE[name]
    assert metric.is_plausible(metric.plausible_min)
    assert metric.is_plausible(metric.plausible_max)
    assert metric.is_plausible((metric.plausible_min + metric.plausible_max) / 2)


@pytest.mark.parametrize("name", METRICS)
def test_values_just_outside_the_plausible_range_are_rejected(name: str) -> None:
    metric = CATALOGUE[name]
    below = round(metric.plausible_min - _step(metric), metric.decimals)
    above = round(metric.plausible_max + _step(metric), metric.decimals)
    assert not metric.is_plausible(below)
    assert not metric.is_plausible(above)
    # also after the canonical rounding a reading goes through
    assert not metric.is_plausible(metric.to_canonical(below, metric.unit))
    assert not metric.is_plausible(metric.to_canonical(above, metric.unit))


@pytest.mark.parametrize(
    ("name", "low_ok", "low_bad", "high_ok", "high_bad"),
    [
        ("heart_rate", 20, 19, 300, 301),
        ("spo2", 50, 49, 100, 101),
        ("respiration_rate", 2, 1, 80, 81),
        ("systolic_bp", 40, 39, 300, 301),
        ("diastolic_bp", 15, 14, 200, 201),
        ("body_temperature", 25.0, 24.9, 45.0, 45.1),
    ],
)
def test_boundaries_with_explicit_values(
    name: str, low_ok: float, low_bad: float, high_ok: float, high_bad: float
) -> None:
    metric = CATALOGUE[name]
    assert metric.is_plausible(metric.to_canonical(low_ok, metric.unit))
    assert metric.is_plausible(metric.to_canonical(high_ok, metric.unit))
    assert not metric.is_plausible(metric.to_canonical(low_bad, metric.unit))
    assert not metric.is_plausible(metric.to_canonical(high_bad, metric.unit))


def test_fahrenheit_boundaries_after_conversion() -> None:
    temperature = CATALOGUE["body_temperature"]
    assert temperature.is_plausible(temperature.to_canonical(113, "[degF]"))  # 45.0
    assert not temperature.is_plausible(temperature.to_canonical(113.2, "[degF]"))  # 45.1
    assert temperature.is_plausible(temperature.to_canonical(77, "[degF]"))  # 25.0
    assert not temperature.is_plausible(temperature.to_canonical(76.8, "[degF]"))  # 24.9


def test_kpa_boundaries_after_conversion() -> None:
    systolic = CATALOGUE["systolic_bp"]
    assert systolic.is_plausible(systolic.to_canonical(40, "kPa"))  # 300.02 -> 300
    assert not systolic.is_plausible(systolic.to_canonical(40.1, "kPa"))  # 300.77 -> 301
    assert systolic.is_plausible(systolic.to_canonical(5.3, "kPa"))  # 39.75 -> 40
    assert not systolic.is_plausible(systolic.to_canonical(5.2, "kPa"))  # 39.0


@pytest.mark.parametrize("name", METRICS)
def test_accepts_the_canonical_unit(name: str) -> None:
    metric = CATALOGUE[name]
    assert metric.accepts(metric.unit)


@pytest.mark.parametrize(
    ("name", "unit"),
    [("systolic_bp", "kPa"), ("diastolic_bp", "kPa"), ("body_temperature", "[degF]")],
)
def test_accepts_converted_units(name: str, unit: str) -> None:
    assert CATALOGUE[name].accepts(unit)


@pytest.mark.parametrize(
    ("name", "unit"),
    [
        ("heart_rate", "bpm"),
        ("heart_rate", "kPa"),
        ("heart_rate", "%"),
        ("spo2", "/min"),
        ("respiration_rate", "Cel"),
        ("systolic_bp", "mmHg"),  # UCUM spells it mm[Hg]
        ("diastolic_bp", "kpa"),  # units are case-sensitive
        ("body_temperature", "cel"),
        ("body_temperature", "degF"),
        ("body_temperature", "[degC]"),
        ("body_temperature", ""),
    ],
)
def test_rejects_wrong_units(name: str, unit: str) -> None:
    assert not CATALOGUE[name].accepts(unit)


def test_converting_from_a_unit_that_is_not_accepted_fails_loudly() -> None:
    with pytest.raises(KeyError):
        CATALOGUE["heart_rate"].to_canonical(72, "bpm")


@pytest.mark.parametrize(
    "value", [0.0, -0.0, 1.0, -3.0, 72.0, 2.0**53, 2.0**53 + 2, -(2.0**60), 1e22, 1e300]
)
@pytest.mark.parametrize("name", ["heart_rate", "body_temperature", "step_count"])
def test_a_whole_number_is_its_own_rounding_sign_of_zero_included(name: str, value: float) -> None:
    """to_canonical skips round() for whole numbers: the answer must be round()'s, bit for bit."""
    metric = CATALOGUE[name]
    canonical = metric.to_canonical(value, metric.unit)
    expected = round(value, metric.decimals)
    assert type(canonical) is float
    assert canonical.hex() == expected.hex()  # -0.0 stays -0.0


def test_an_integer_value_is_still_rounded_as_before() -> None:
    metric = CATALOGUE["heart_rate"]
    assert metric.to_canonical(72, "/min") == 72 and type(metric.to_canonical(72, "/min")) is int
