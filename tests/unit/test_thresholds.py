"""Which thresholds apply to a patient: default, care unit, patient; and their validation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest

from devices import AlertEventKind, ReadingBatch
from store import ThresholdOverride
from streams import detect
from streams._detect import RULES_BY_ID
from streams._news2 import SpO2Scale
from streams._threshold_book import ThresholdBook
from streams._thresholds import (
    SPO2_SCALE_SETTING,
    effective_rules,
    effective_spo2_scale,
    usable_settings,
)

WHEN = datetime(2026, 11, 1, tzinfo=UTC)


def _override(rule: str, limit: float, clear_at: float, *, unit: str | None = None,
              patient: str | None = None, tenant: str = "chu-a", persistence: int = 2) -> ThresholdOverride:  # fmt: skip
    return ThresholdOverride(tenant, unit, patient, rule, limit, clear_at, persistence, 1, True,
                             "dr-who", WHEN, None)  # fmt: skip


def _spo2_rule(overrides: list[ThresholdOverride], unit: str = "icu", patient: str = "p-1") -> tuple[float, float, int]:  # fmt: skip
    rules = effective_rules(overrides, tenant="chu-a", care_unit=unit, patient=patient)
    [rule] = rules["spo2"]
    return rule.limit, rule.clear_at, rule.persistence


def test_default_when_nothing_applies() -> None:
    default = RULES_BY_ID["spo2_low"]
    assert _spo2_rule([]) == (default.limit, default.clear_at, default.persistence)
    others = [_override("spo2_low", 85, 88, unit="cardiology"), _override("spo2_low", 85, 88, patient="p-2"),
              _override("spo2_low", 85, 88, unit="icu", tenant="chu-b")]  # fmt: skip
    assert _spo2_rule(others) == (default.limit, default.clear_at, default.persistence)


def test_patient_override_beats_unit_override() -> None:
    unit = _override("spo2_low", 88, 90, unit="icu")
    patient = _override("spo2_low", 85, 87, patient="p-1", persistence=5)
    assert _spo2_rule([unit]) == (88, 90, 2)
    assert _spo2_rule([unit, patient]) == (85, 87, 5)
    assert _spo2_rule([patient, unit]) == (85, 87, 5)
    assert _spo2_rule([unit, patient], patient="p-9") == (88, 90, 2)


def test_other_rules_keep_their_defaults() -> None:
    rules = effective_rules([_override("spo2_low", 88, 90, unit="icu")], tenant="chu-a",
                            care_unit="icu", patient="p-1")  # fmt: skip
    assert rules["heart_rate"] == (RULES_BY_ID["heart_rate_high"], RULES_BY_ID["heart_rate_low"])


@pytest.mark.parametrize(
    ("rule", "limit", "clear_at", "persistence", "message"),
    [
        ("spo2_low", 90, 88, 3, "must not be below"),  # "below" rule: clearing below the limit
        ("heart_rate_high", 130, 135, 3, "must not exceed"),  # "above" rule: clearing above
        ("spo2_low", 90, 92, 0, "at least 1"),
    ],
)
def test_overrides_that_break_hysteresis_are_refused(
    rule: str, limit: float, clear_at: float, persistence: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        RULES_BY_ID[rule].overridden(limit=limit, clear_at=clear_at, persistence=persistence)


def test_detection_uses_the_patient_rules() -> None:
    rules = effective_rules([_override("spo2_low", 94, 96, patient="p-1")], tenant="chu-a",
                            care_unit="icu", patient="p-1")  # fmt: skip
    t0 = 1_790_000_000_000_000
    batch = ReadingBatch("chu-a", "icu", "p-1", "d", ("spo2",) * 2, (93.0, 93.0), (t0, t0 + 1),
                         (1, 2), (t0, t0 + 1))  # fmt: skip
    assert detect(batch, {}) == []  # 93 % is fine by the default rule (< 90)
    [event] = detect(batch, {}, rules)
    assert event.kind is AlertEventKind.OPENED and event.rule == "spo2_low"


def test_spo2_scale_patient_setting_beats_the_unit_setting_and_defaults_to_1() -> None:
    def scale(overrides: list[ThresholdOverride], patient: str = "p-1") -> SpO2Scale:
        return effective_spo2_scale(overrides, tenant="chu-a", care_unit="pneumo", patient=patient)

    unit = _override(SPO2_SCALE_SETTING, 2, 2, unit="pneumo")
    patient_back_to_1 = _override(SPO2_SCALE_SETTING, 1, 1, patient="p-1")
    other_tenant = _override(SPO2_SCALE_SETTING, 2, 2, unit="pneumo", tenant="chu-b")
    assert scale([]) is SpO2Scale.SCALE_1
    assert scale([other_tenant]) is SpO2Scale.SCALE_1
    assert scale([unit]) is SpO2Scale.SCALE_2
    assert scale([unit, patient_back_to_1]) is SpO2Scale.SCALE_1
    assert scale([unit, patient_back_to_1], patient="p-2") is SpO2Scale.SCALE_2
    # the setting is not a threshold rule: the rules stay the defaults
    assert _spo2_rule([unit], unit="pneumo") == _spo2_rule([])


def test_overrides_a_detector_cannot_apply_are_left_out(caplog: pytest.LogCaptureFixture) -> None:
    good = _override("spo2_low", 88, 90, unit="icu")
    broken = _override("spo2_low", 90, 88, unit="icu")  # clears below its limit
    scale_3 = _override(SPO2_SCALE_SETTING, 3, 3, unit="pneumo")
    scale_2 = _override(SPO2_SCALE_SETTING, 2, 2, unit="pneumo")
    assert usable_settings([good, broken, scale_3, scale_2]) == [good, scale_2]
    assert "SpO2 scale 3 v1 ignored: not 1 or 2" in caplog.text
    assert "threshold override spo2_low v1 ignored" in caplog.text


class _Overrides:
    """An ``OverrideSource`` in memory."""

    def __init__(self, overrides: list[ThresholdOverride]) -> None:
        self.overrides = overrides

    async def load(self) -> list[ThresholdOverride]:
        return self.overrides

    async def follow(self, on_change: Callable[[], Awaitable[None]]) -> None:
        await on_change()


def test_threshold_book_serves_the_loaded_overrides_until_the_next_refresh() -> None:
    source = _Overrides([_override("spo2_low", 88, 90, patient="p-1"),
                         _override(SPO2_SCALE_SETTING, 2, 2, unit="pneumo")])  # fmt: skip
    book = ThresholdBook(source)

    async def scenario() -> None:
        await book.listen()  # loads once, as on every (re)connect
        await book.wait_loaded()
        assert book.rules_for("chu-a", "icu", "p-1")["spo2"][0].limit == 88
        assert book.rules_for("chu-a", "icu", "p-2") is book.rules_for("chu-a", "icu", "p-2")
        assert book.spo2_scale_for("chu-a", "pneumo", "p-3") is SpO2Scale.SCALE_2
        source.overrides = []
        assert book.rules_for("chu-a", "icu", "p-1")["spo2"][0].limit == 88  # cached
        await book.refresh()
        assert (
            book.rules_for("chu-a", "icu", "p-1")["spo2"][0].limit == RULES_BY_ID["spo2_low"].limit
        )
        assert book.spo2_scale_for("chu-a", "pneumo", "p-3") is SpO2Scale.SCALE_1

    asyncio.run(scenario())
