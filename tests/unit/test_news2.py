"""NEWS2 (RCP 2017): every chart boundary on both sides, the bands, and the two edges."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from devices import Priority
from streams._news2 import (
    NEWS2_PARAMETERS,
    News2Observations,
    RiskBand,
    SpO2Scale,
    observations_from_latest,
    score_news2,
)
from veille.news2 import run_news2

NEWS2_DOC = (Path(__file__).resolve().parents[2] / "docs" / "NEWS2.md").read_text()

# Every parameter scores 0 here, so a test that changes one sees only that subscore.
BASELINE: dict[str, Any] = {
    "respiration_rate": 16,
    "spo2": 97,
    "on_oxygen": False,
    "systolic_bp": 120,
    "pulse": 70,
    "consciousness": "A",
    "temperature": 37.0,
}


def _obs(**changes: Any) -> News2Observations:
    return News2Observations(**{**BASELINE, **changes})


def _only(parameter: str, value: float, expected: int) -> None:
    """Scoring ``value`` alone gives ``expected`` for ``parameter`` and 0 everywhere else."""
    score = score_news2(_obs(**{parameter: value}))
    assert score.subscores == {p: expected if p == parameter else 0 for p in NEWS2_PARAMETERS}
    assert score.total == expected


# --- the chart, boundary by boundary ------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, 3), (8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3), (60, 3)],
)
def test_respiration_rate_chart(value: float, expected: int) -> None:
    _only("respiration_rate", value, expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(50, 3), (91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0)],
)
def test_spo2_scale_1_chart(value: float, expected: int) -> None:
    _only("spo2", value, expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (50, 3),
        (83, 3),
        (84, 2),
        (85, 2),
        (86, 1),
        (87, 1),
        (88, 0),
        (92, 0),
        (93, 0),
        (96, 0),
        (97, 0),
        (100, 0),
    ],
)
def test_spo2_scale_2_on_air_never_scores_a_high_saturation(value: float, expected: int) -> None:
    score = score_news2(_obs(spo2=value, spo2_scale=SpO2Scale.SCALE_2))
    assert score.subscores["spo2"] == expected
    assert score.total == expected
    assert score.spo2_scale is SpO2Scale.SCALE_2


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (50, 3),
        (83, 3),
        (84, 2),
        (85, 2),
        (86, 1),
        (87, 1),
        (88, 0),
        (92, 0),
        (93, 1),
        (94, 1),
        (95, 2),
        (96, 2),
        (97, 3),
        (100, 3),
    ],
)
def test_spo2_scale_2_on_oxygen_scores_over_oxygenation(value: float, expected: int) -> None:
    score = score_news2(_obs(spo2=value, on_oxygen=True, spo2_scale=SpO2Scale.SCALE_2))
    assert score.subscores["spo2"] == expected
    assert score.subscores["air_or_oxygen"] == 2
    assert score.total == expected + 2


def test_spo2_scale_1_on_oxygen_scores_only_the_oxygen() -> None:
    score = score_news2(_obs(spo2=100, on_oxygen=True))
    assert dict(score.subscores) == {**{p: 0 for p in NEWS2_PARAMETERS}, "air_or_oxygen": 2}
    assert score.total == 2
    assert score.band is RiskBand.LOW


def test_spo2_scale_accepts_a_plain_int_and_reports_the_enum() -> None:
    score = score_news2(_obs(spo2=97, on_oxygen=True, spo2_scale=2))
    assert score.subscores["spo2"] == 3
    assert score.spo2_scale is SpO2Scale.SCALE_2


@pytest.mark.parametrize(("on_oxygen", "expected"), [(False, 0), (True, 2)])
def test_air_or_oxygen(on_oxygen: bool, expected: int) -> None:
    score = score_news2(_obs(on_oxygen=on_oxygen))
    assert score.subscores["air_or_oxygen"] == expected
    assert score.total == expected
    assert score.red_parameters == ()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (40, 3),
        (90, 3),
        (91, 2),
        (100, 2),
        (101, 1),
        (110, 1),
        (111, 0),
        (219, 0),
        (220, 3),
        (300, 3),
    ],
)
def test_systolic_bp_chart(value: float, expected: int) -> None:
    _only("systolic_bp", value, expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (20, 3),
        (40, 3),
        (41, 1),
        (50, 1),
        (51, 0),
        (90, 0),
        (91, 1),
        (110, 1),
        (111, 2),
        (130, 2),
        (131, 3),
        (300, 3),
    ],
)
def test_pulse_chart(value: float, expected: int) -> None:
    _only("pulse", value, expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (25.0, 3),
        (35.0, 3),
        (35.1, 1),
        (36.0, 1),
        (36.1, 0),
        (38.0, 0),
        (38.1, 1),
        (39.0, 1),
        (39.1, 2),
        (45.0, 2),
    ],
)
def test_temperature_chart(value: float, expected: int) -> None:
    _only("temperature", value, expected)


@pytest.mark.parametrize(("level", "expected"), [("A", 0), ("C", 3), ("V", 3), ("P", 3), ("U", 3)])
def test_consciousness(level: str, expected: int) -> None:
    score = score_news2(_obs(consciousness=level))
    assert score.subscores["consciousness"] == expected
    assert score.total == expected
    assert score.red_parameters == (("consciousness",) if expected else ())


# --- decimals: each band ends at its upper bound, inclusive -------------------------------


@pytest.mark.parametrize(
    ("parameter", "value", "expected"),
    [
        ("respiration_rate", 8.5, 1),
        ("respiration_rate", 11.5, 0),
        ("respiration_rate", 20.5, 2),
        ("respiration_rate", 24.5, 3),
        ("spo2", 91.5, 2),
        ("spo2", 93.5, 1),
        ("spo2", 95.5, 0),
        ("systolic_bp", 90.5, 2),
        ("systolic_bp", 100.5, 1),
        ("systolic_bp", 110.5, 0),
        ("systolic_bp", 219.5, 3),
        ("pulse", 40.5, 1),
        ("pulse", 50.5, 0),
        ("pulse", 90.5, 1),
        ("pulse", 110.5, 2),
        ("pulse", 130.5, 3),
        ("temperature", 35.05, 1),
        ("temperature", 36.05, 0),
        ("temperature", 38.05, 1),
        ("temperature", 39.05, 2),
    ],
)
def test_a_decimal_between_bands_takes_the_next_band_up(
    parameter: str, value: float, expected: int
) -> None:
    _only(parameter, value, expected)


@pytest.mark.parametrize(
    ("value", "on_oxygen", "expected"),
    [
        (83.5, False, 2),
        (85.5, True, 1),
        (87.5, False, 0),
        (87.5, True, 0),
        (92.5, False, 0),
        (92.5, True, 1),
        (94.5, True, 2),
        (96.5, True, 3),
    ],
)
def test_spo2_scale_2_decimals(value: float, on_oxygen: bool, expected: int) -> None:
    score = score_news2(_obs(spo2=value, on_oxygen=on_oxygen, spo2_scale=SpO2Scale.SCALE_2))
    assert score.subscores["spo2"] == expected


# --- aggregate, bands and red parameters --------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "total", "band", "red"),
    [
        ({}, 0, RiskBand.LOW, ()),
        ({"respiration_rate": 21, "pulse": 111}, 4, RiskBand.LOW, ()),
        ({"consciousness": "V"}, 3, RiskBand.LOW_MEDIUM, ("consciousness",)),
        ({"systolic_bp": 90, "temperature": 38.5}, 4, RiskBand.LOW_MEDIUM, ("systolic_bp",)),
        ({"respiration_rate": 21, "pulse": 111, "temperature": 38.5}, 5, RiskBand.MEDIUM, ()),
        ({"systolic_bp": 90, "pulse": 111}, 5, RiskBand.MEDIUM, ("systolic_bp",)),
        ({"spo2": 91, "on_oxygen": True, "temperature": 38.5}, 6, RiskBand.MEDIUM, ("spo2",)),
        (
            {"spo2": 91, "systolic_bp": 90, "temperature": 38.5},
            7,
            RiskBand.HIGH,
            ("spo2", "systolic_bp"),
        ),
        (
            {"respiration_rate": 21, "pulse": 111, "temperature": 39.5, "on_oxygen": True},
            8,
            RiskBand.HIGH,
            (),
        ),
    ],
)
def test_bands(changes: dict[str, Any], total: int, band: RiskBand, red: tuple[str, ...]) -> None:
    score = score_news2(_obs(**changes))
    assert (score.total, score.band, score.red_parameters) == (total, band, red)


def test_worst_case_on_each_scale_totals_20_with_every_red_in_chart_order() -> None:
    worst = _obs(
        respiration_rate=30,
        spo2=85,
        on_oxygen=True,
        systolic_bp=80,
        pulse=140,
        consciousness="U",
        temperature=34.0,
    )
    score = score_news2(worst)
    assert score.total == 20
    assert score.band is RiskBand.HIGH
    red = ("respiration_rate", "spo2", "systolic_bp", "pulse", "consciousness", "temperature")
    assert score.red_parameters == red
    on_scale_2 = score_news2(dataclasses.replace(worst, spo2=99, spo2_scale=SpO2Scale.SCALE_2))
    assert on_scale_2.total == 20
    assert on_scale_2.red_parameters == red


def test_rcp_worked_example_scores_7_high() -> None:
    score = score_news2(
        _obs(respiration_rate=22, spo2=95, systolic_bp=105, pulse=115, temperature=38.5)
    )
    assert list(score.subscores.items()) == [
        ("respiration_rate", 2),
        ("spo2", 1),
        ("air_or_oxygen", 0),
        ("systolic_bp", 1),
        ("pulse", 2),
        ("consciousness", 0),
        ("temperature", 1),
    ]
    assert score.total == 7
    assert score.band is RiskBand.HIGH
    assert score.red_parameters == ()
    assert score.spo2_scale is SpO2Scale.SCALE_1


@pytest.mark.parametrize(
    ("band", "priority"),
    [
        (RiskBand.LOW, Priority.LOW),
        (RiskBand.LOW_MEDIUM, Priority.MEDIUM),
        (RiskBand.MEDIUM, Priority.MEDIUM),
        (RiskBand.HIGH, Priority.HIGH),
    ],
)
def test_band_to_alert_priority(band: RiskBand, priority: Priority) -> None:
    assert band.priority is priority


def test_enum_values_are_the_documented_strings_and_numbers() -> None:
    assert [b.value for b in RiskBand] == ["low", "low-medium", "medium", "high"]
    assert [s.value for s in SpO2Scale] == [1, 2]


def test_score_is_immutable() -> None:
    score = score_news2(_obs())
    with pytest.raises(dataclasses.FrozenInstanceError):
        score.total = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        score.subscores["spo2"] = 3  # type: ignore[index]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"respiration_rate": math.nan}, "NEWS2 respiration_rate must be a finite number, got nan"),
        ({"temperature": math.inf}, "NEWS2 temperature must be a finite number, got inf"),
        ({"consciousness": "a"}, "NEWS2 consciousness must be one of A, C, V, P, U, got 'a'"),
        ({"spo2_scale": 3}, "3 is not a valid SpO2Scale"),
    ],
)
def test_observations_refuse_what_cannot_be_scored(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        _obs(**changes)


# --- observations_from_latest -------------------------------------------------------------

LATEST: dict[str, float | None] = {
    "respiration_rate": 22.0,
    "spo2": 95.0,
    "inhaled_oxygen_flow": 0.0,
    "systolic_bp": 105.0,
    "heart_rate": 115.0,
    "consciousness": 0.0,
    "body_temperature": 38.5,
    "diastolic_bp": 70.0,  # not a NEWS2 parameter: ignored
}


def test_observations_from_latest_maps_catalogue_metrics() -> None:
    assert observations_from_latest(LATEST) == News2Observations(
        respiration_rate=22.0,
        spo2=95.0,
        on_oxygen=False,
        systolic_bp=105.0,
        pulse=115.0,
        consciousness="A",
        temperature=38.5,
        spo2_scale=SpO2Scale.SCALE_1,
    )


def test_observations_from_latest_passes_the_scale_through() -> None:
    obs = observations_from_latest(LATEST, spo2_scale=SpO2Scale.SCALE_2)
    assert isinstance(obs, News2Observations)
    assert obs.spo2_scale is SpO2Scale.SCALE_2


@pytest.mark.parametrize(
    ("changes", "pulse"),
    [
        ({"heart_rate": 115.0, "pulse_rate": 80.0}, 115.0),
        ({"heart_rate": None, "pulse_rate": 80.0}, 80.0),
        ({"pulse_rate": 80.0}, 80.0),
    ],
)
def test_pulse_prefers_heart_rate_over_pulse_rate(
    changes: dict[str, float | None], pulse: float
) -> None:
    latest = {k: v for k, v in LATEST.items() if k != "heart_rate"} | changes
    obs = observations_from_latest(latest)
    assert isinstance(obs, News2Observations)
    assert obs.pulse == pulse


@pytest.mark.parametrize(("flow", "on_oxygen"), [(0.0, False), (0.5, True), (2.0, True)])
def test_any_oxygen_flow_above_zero_is_on_oxygen(flow: float, on_oxygen: bool) -> None:
    obs = observations_from_latest({**LATEST, "inhaled_oxygen_flow": flow})
    assert isinstance(obs, News2Observations)
    assert obs.on_oxygen is on_oxygen


@pytest.mark.parametrize(("code", "letter"), [(0, "A"), (1, "C"), (2, "V"), (3, "P"), (4, "U")])
def test_acvpu_codes(code: float, letter: str) -> None:
    obs = observations_from_latest({**LATEST, "consciousness": float(code)})
    assert isinstance(obs, News2Observations)
    assert obs.consciousness == letter


@pytest.mark.parametrize("code", [-1.0, 1.5, 5.0, math.nan])
def test_an_impossible_acvpu_code_is_an_error_not_a_missing_value(code: float) -> None:
    message = f"consciousness code {code!r} is not an ACVPU code 0..4 (A, C, V, P, U)"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        observations_from_latest({**LATEST, "consciousness": code})


@pytest.mark.parametrize(
    ("absent", "missing"),
    [
        (("body_temperature",), ("temperature",)),
        (("heart_rate",), ("pulse",)),  # LATEST has no pulse_rate to fall back on
        (("consciousness", "inhaled_oxygen_flow"), ("air_or_oxygen", "consciousness")),
        (tuple(LATEST), NEWS2_PARAMETERS),
    ],
)
def test_missing_parameters_in_chart_order(
    absent: tuple[str, ...], missing: tuple[str, ...]
) -> None:
    latest = {k: v for k, v in LATEST.items() if k not in absent}
    assert observations_from_latest(latest) == missing


def test_no_signal_counts_as_missing() -> None:
    latest = {**LATEST, "spo2": None, "heart_rate": None, "pulse_rate": None}
    assert observations_from_latest(latest) == ("spo2", "pulse")


def test_from_latest_to_score_end_to_end() -> None:
    obs = observations_from_latest({**LATEST, "inhaled_oxygen_flow": 2.0, "consciousness": 1.0})
    assert isinstance(obs, News2Observations)
    score = score_news2(obs)
    assert (score.total, score.band, score.red_parameters) == (
        12,
        RiskBand.HIGH,
        ("consciousness",),
    )


# --- veille news2 -------------------------------------------------------------------------

WORKED: dict[str, Any] = {
    "respiration_rate": 22,
    "spo2": 95,
    "air_or_oxygen": "air",
    "systolic_bp": 105,
    "pulse": 115,
    "consciousness": "A",
    "temperature": 38.5,
}

WORKED_OUTPUT = """{
  "subscores": {
    "respiration_rate": 2,
    "spo2": 1,
    "air_or_oxygen": 0,
    "systolic_bp": 1,
    "pulse": 2,
    "consciousness": 0,
    "temperature": 1
  },
  "total": 7,
  "band": "high",
  "red_parameters": [],
  "spo2_scale": 1
}"""


def _run(payload: dict[str, Any]) -> tuple[int, Any]:
    code, text = run_news2(orjson.dumps(payload).decode())
    return code, orjson.loads(text)


def test_run_news2_prints_the_exact_score() -> None:
    assert run_news2(orjson.dumps(WORKED).decode() + "\n") == (0, WORKED_OUTPUT)


def test_run_news2_scale_2_on_oxygen() -> None:
    payload = {
        **WORKED,
        "spo2": 97,
        "spo2_scale": 2,
        "air_or_oxygen": "oxygen",
        "consciousness": "C",
    }
    code, out = _run(payload)
    assert code == 0
    assert out == {
        "subscores": {
            "respiration_rate": 2,
            "spo2": 3,
            "air_or_oxygen": 2,
            "systolic_bp": 1,
            "pulse": 2,
            "consciousness": 3,
            "temperature": 1,
        },
        "total": 14,
        "band": "high",
        "red_parameters": ["spo2", "consciousness"],
        "spo2_scale": 2,
    }
    assert list(out) == ["subscores", "total", "band", "red_parameters", "spo2_scale"]
    assert list(out["subscores"]) == list(NEWS2_PARAMETERS)


def test_run_news2_accepts_decimals() -> None:
    code, out = _run({**WORKED, "respiration_rate": 20.5, "temperature": 36.05})
    assert code == 0
    assert (out["subscores"]["respiration_rate"], out["subscores"]["temperature"]) == (2, 0)
    assert out["total"] == 6


def _error(field: str | None, message: str) -> dict[str, Any]:
    error = (
        f"invalid NEWS2 input: {field}"
        if field
        else "invalid NEWS2 input: expected one JSON object"
    )
    return {"error": error, "details": [{"field": field, "message": message}]}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            orjson.dumps({**WORKED, "heart_rate": 80}).decode(),
            _error("heart_rate", "Extra inputs are not permitted"),
        ),
        (
            orjson.dumps({k: v for k, v in WORKED.items() if k != "pulse"}).decode(),
            _error("pulse", "Field required"),
        ),
        (
            orjson.dumps({**WORKED, "spo2": "95"}).decode(),
            _error("spo2", "Input should be a valid number"),
        ),
        (
            orjson.dumps({**WORKED, "pulse": True}).decode(),
            _error("pulse", "Input should be a valid number"),
        ),
        (
            orjson.dumps(WORKED).decode().replace("38.5", "NaN"),
            _error("temperature", "Input should be a finite number"),
        ),
        (
            orjson.dumps(WORKED).decode().replace("105", "Infinity"),
            _error("systolic_bp", "Input should be a finite number"),
        ),
        (
            orjson.dumps({**WORKED, "respiration_rate": 1.5}).decode(),
            _error("respiration_rate", "1.5 /min is outside the plausible range 2 to 80 /min"),
        ),
        (
            orjson.dumps({**WORKED, "spo2": 101}).decode(),
            _error("spo2", "101 % is outside the plausible range 50 to 100 %"),
        ),
        (
            orjson.dumps({**WORKED, "systolic_bp": 301}).decode(),
            _error("systolic_bp", "301 mm[Hg] is outside the plausible range 40 to 300 mm[Hg]"),
        ),
        (
            orjson.dumps({**WORKED, "pulse": 10}).decode(),
            _error("pulse", "10 /min is outside the plausible range 20 to 300 /min"),
        ),
        (
            orjson.dumps({**WORKED, "temperature": 99.1}).decode(),
            _error("temperature", "99.1 Cel is outside the plausible range 25 to 45 Cel"),
        ),
        (
            orjson.dumps({**WORKED, "spo2_scale": 3}).decode(),
            _error("spo2_scale", "Input should be 1 or 2"),
        ),
        (
            orjson.dumps({**WORKED, "spo2_scale": True}).decode(),
            _error("spo2_scale", "Input should be 1 or 2"),
        ),
        (
            orjson.dumps({**WORKED, "spo2_scale": 2.0}).decode(),
            _error("spo2_scale", "Input should be 1 or 2"),
        ),
        (
            orjson.dumps({**WORKED, "consciousness": "a"}).decode(),
            _error("consciousness", "Input should be 'A', 'C', 'V', 'P' or 'U'"),
        ),
        (
            orjson.dumps({**WORKED, "air_or_oxygen": "O2"}).decode(),
            _error("air_or_oxygen", "Input should be 'air' or 'oxygen'"),
        ),
        ("[]", _error(None, "Input should be an object")),
        ("", _error(None, "Invalid JSON: EOF while parsing a value at line 1 column 0")),
    ],
)
def test_run_news2_refuses_invalid_input_naming_the_field(
    text: str, expected: dict[str, Any]
) -> None:
    code, out = run_news2(text)
    assert code == 2
    assert orjson.loads(out) == expected


def test_run_news2_lists_every_bad_field_in_input_order() -> None:
    code, out = _run({"spo2": 95, "temp": 38.5})
    assert code == 2
    assert out["error"] == (
        "invalid NEWS2 input: respiration_rate, air_or_oxygen, systolic_bp, pulse, "
        "consciousness, temperature, temp"
    )
    assert [d["field"] for d in out["details"]] == [
        "respiration_rate",
        "air_or_oxygen",
        "systolic_bp",
        "pulse",
        "consciousness",
        "temperature",
        "temp",
    ]


def test_docs_example_is_the_real_output() -> None:
    """docs/NEWS2.md shows `echo '...' | veille news2` and its output: keep them true."""
    block = re.search(
        r"```console\n\$ echo '(?P<input>[^']+)' \| veille news2\n(?P<out>.*?)\n```",
        NEWS2_DOC,
        re.DOTALL,
    )
    assert block is not None
    assert run_news2(block["input"]) == (0, block["out"])
