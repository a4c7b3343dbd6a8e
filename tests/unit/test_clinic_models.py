"""Request models refuse malformed input before any SQL; the scope narrows, never widens."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from clinic import CareScope
from clinic._models import LoginRequest, ResolveRequest, ThresholdChange


def test_login_refuses_unknown_fields_and_odd_names() -> None:
    LoginRequest(tenant="chu-lyon", username="n.martin", password="x")
    with pytest.raises(ValidationError):
        LoginRequest.model_validate(
            {"tenant": "chu", "username": "a", "password": "x", "role": "admin"}
        )
    with pytest.raises(ValidationError):
        LoginRequest(tenant="chu'; --", username="a", password="x")


def test_a_resolution_needs_a_note() -> None:
    assert ResolveRequest(note="  probe moved ").note == "probe moved"
    for note in ("", "   ", "x" * 2001):
        with pytest.raises(ValidationError):
            ResolveRequest(note=note)


@pytest.mark.parametrize(
    "body",
    [
        {"limit": float("nan"), "clear_at": 96},
        {"limit": float("inf"), "clear_at": 96},
        {"limit": 94, "clear_at": 96, "persistence": 0},
        {"limit": 94, "clear_at": 96, "persistence": 101},
        {"limit": 94},
        {"limit": 94, "clear_at": 96, "by": "someone else"},
    ],
)
def test_threshold_changes_are_finite_bounded_and_closed(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ThresholdChange.model_validate(body)


def test_threshold_change_defaults_to_three_readings() -> None:
    assert ThresholdChange(limit=94, clear_at=96).persistence == 3


def test_scope_narrows_to_a_member_unit_or_to_nothing() -> None:
    scope = CareScope("chu", ("icu", "ward-3"))
    assert scope.narrowed(None) == scope
    assert scope.narrowed("icu").care_units == ("icu",)
    assert scope.narrowed("oncology").care_units == ()
    assert scope.narrowed("oncology").tenant == "chu"
