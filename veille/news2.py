"""``veille news2``: score one observation set given as JSON, for a clinician or an auditor.

The input is checked strictly (unknown fields, strings for numbers, NaN and implausible
values are refused, naming the field) because a score from a typo looks like a real score.
Plausible ranges are the metric catalogue's, so the command and the pipeline agree.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from devices import CATALOGUE
from streams import News2Observations, News2Score, SpO2Scale, score_news2

__all__ = ["News2Input", "news2_json", "run_news2"]

EXIT_OK = 0
EXIT_INVALID_INPUT = 2  # argparse's code for a usage error: the input, not Veille, is wrong


# Input field -> the catalogue metric whose plausible range and unit it takes.
_FIELD_METRICS: Final = MappingProxyType(
    {
        "respiration_rate": "respiration_rate",
        "spo2": "spo2",
        "systolic_bp": "systolic_bp",
        "pulse": "heart_rate",
        "temperature": "body_temperature",
    }
)
_RANGE_ERRORS: Final = frozenset({"greater_than_equal", "less_than_equal"})


def _plausible(field: str) -> Any:
    """A strict finite number within the catalogue's plausible range for ``field``."""
    entry = CATALOGUE[_FIELD_METRICS[field]]
    return Field(strict=True, ge=entry.plausible_min, le=entry.plausible_max)


def _exact_scale(value: object) -> object:
    # A Literal[1, 2] alone takes true as 1 and 2.0 as 2: a typo must not pick the chart.
    if type(value) is not int:
        raise PydanticCustomError("literal_error", "Input should be 1 or 2")
    return value


class News2Input(BaseModel):
    """One NEWS2 observation set as typed at the command line (chart units)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    respiration_rate: Annotated[float, _plausible("respiration_rate")]  # /min
    spo2: Annotated[float, _plausible("spo2")]  # %
    spo2_scale: Annotated[Literal[1, 2], BeforeValidator(_exact_scale)] = 1
    air_or_oxygen: Literal["air", "oxygen"]
    systolic_bp: Annotated[float, _plausible("systolic_bp")]  # mmHg
    pulse: Annotated[float, _plausible("pulse")]  # /min
    consciousness: Literal["A", "C", "V", "P", "U"]
    temperature: Annotated[float, _plausible("temperature")]  # Cel

    def observations(self) -> News2Observations:
        return News2Observations(
            respiration_rate=self.respiration_rate,
            spo2=self.spo2,
            on_oxygen=self.air_or_oxygen == "oxygen",
            systolic_bp=self.systolic_bp,
            pulse=self.pulse,
            consciousness=self.consciousness,
            temperature=self.temperature,
            spo2_scale=SpO2Scale(self.spo2_scale),
        )


def news2_json(score: News2Score) -> dict[str, object]:
    """The score as JSON-ready data, keys in a fixed order so output diffs cleanly."""
    return {
        "subscores": dict(score.subscores),
        "total": score.total,
        "band": score.band.value,
        "red_parameters": list(score.red_parameters),
        "spo2_scale": score.spo2_scale.value,
    }


def _message(field: str | None, error_type: str, message: str, value: object) -> str:
    """Say the plausible range and unit for an out-of-range number, not just one bound."""
    if field is not None and field in _FIELD_METRICS and error_type in _RANGE_ERRORS:
        entry = CATALOGUE[_FIELD_METRICS[field]]
        return (
            f"{value} {entry.unit} is outside the plausible range "
            f"{entry.plausible_min:g} to {entry.plausible_max:g} {entry.unit}"
        )
    return message


def _error_details(exc: ValidationError) -> list[dict[str, object]]:
    details: list[dict[str, object]] = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or None
        message = _message(field, error["type"], error["msg"], error.get("input"))
        details.append({"field": field, "message": message})
    return details


def _dumps(data: object) -> str:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()


def run_news2(stdin_text: str) -> tuple[int, str]:
    """Score the JSON object in ``stdin_text``: (exit code, JSON text to print)."""
    try:
        parsed = News2Input.model_validate_json(stdin_text)
    except ValidationError as exc:
        details = _error_details(exc)
        fields = list(dict.fromkeys(str(d["field"]) for d in details if d["field"] is not None))
        error = (
            f"invalid NEWS2 input: {', '.join(fields)}"
            if fields
            else "invalid NEWS2 input: expected one JSON object"
        )
        return EXIT_INVALID_INPUT, _dumps({"error": error, "details": details})
    return EXIT_OK, _dumps(news2_json(score_news2(parsed.observations())))
