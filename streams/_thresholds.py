"""The thresholds in force for a patient: default, else the care unit's, else the patient's.

Pure: overrides come in as values (anything shaped like :class:`ThresholdSetting`, such as
``store.ThresholdOverride``); the worker's cache that reads them from the database is
``_threshold_book``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from types import MappingProxyType
from typing import Protocol, TypeVar

from ._detect import DEFAULT_RULES, RULES_BY_ID, ThresholdRule, rules_by_metric
from ._news2 import SpO2Scale

__all__ = [
    "SPO2_SCALE_SETTING",
    "RuleSet",
    "ThresholdSetting",
    "effective_rules",
    "effective_spo2_scale",
    "usable_settings",
]

# NEWS2's SpO2 scale is prescribed per patient (or for a whole respiratory unit). It is kept
# as an override of this pseudo-rule, ``limit`` holding the scale: the same versioning, the
# same who-and-why history and the same reload on NOTIFY as any threshold.
SPO2_SCALE_SETTING = "news2_spo2_scale"

log = logging.getLogger(__name__)

RuleSet = MappingProxyType[str, tuple[ThresholdRule, ...]]
_DEFAULT_SET: RuleSet = rules_by_metric(DEFAULT_RULES)


class ThresholdSetting(Protocol):
    """One override in force for a care unit (``patient`` None) or a patient."""

    @property
    def tenant(self) -> str: ...
    @property
    def care_unit(self) -> str | None: ...
    @property
    def patient(self) -> str | None: ...
    @property
    def rule(self) -> str: ...
    @property
    def limit(self) -> float | None: ...
    @property
    def clear_at(self) -> float | None: ...
    @property
    def persistence(self) -> int | None: ...
    @property
    def version(self) -> int: ...


Setting = TypeVar("Setting", bound=ThresholdSetting)


def effective_rules(
    overrides: Sequence[ThresholdSetting], *, tenant: str, care_unit: str, patient: str
) -> RuleSet:
    """Patient override beats care-unit override beats the default, rule by rule."""
    mine = [o for o in overrides if o.tenant == tenant and o.rule in RULES_BY_ID]
    unit_level = {o.rule: o for o in mine if o.patient is None and o.care_unit == care_unit}
    patient_level = {o.rule: o for o in mine if o.patient == patient}
    chosen = {**unit_level, **patient_level}
    if not chosen:
        return _DEFAULT_SET
    rules = []
    for rule in DEFAULT_RULES:
        o = chosen.get(rule.rule_id)
        if o is None or o.limit is None or o.clear_at is None or o.persistence is None:
            rules.append(rule)
            continue
        rules.append(rule.overridden(limit=o.limit, clear_at=o.clear_at, persistence=o.persistence))
    return rules_by_metric(tuple(rules))


def effective_spo2_scale(
    overrides: Sequence[ThresholdSetting], *, tenant: str, care_unit: str, patient: str
) -> SpO2Scale:
    """Patient setting beats care-unit setting beats scale 1."""
    mine = [o for o in overrides if o.tenant == tenant and o.rule == SPO2_SCALE_SETTING]
    patient_level = [o for o in mine if o.patient == patient]
    unit_level = [o for o in mine if o.patient is None and o.care_unit == care_unit]
    for o in (*patient_level, *unit_level):
        if o.limit is not None:
            return SpO2Scale(int(o.limit))
    return SpO2Scale.SCALE_1


def usable_settings(overrides: Iterable[Setting]) -> list[Setting]:
    """The overrides a detector can apply; one stored before a rule changed (or a scale other
    than 1 or 2) is left out with an error logged, so its scope keeps the default."""
    usable = []
    for o in overrides:
        if o.rule == SPO2_SCALE_SETTING:
            if o.limit not in (1, 2):
                log.error("SpO2 scale %s v%d ignored: not 1 or 2", o.limit, o.version)
                continue
        else:
            try:
                effective_rules(
                    [o], tenant=o.tenant, care_unit=o.care_unit or "", patient=o.patient or ""
                )
            except ValueError as exc:  # stored before a rule changed: keep the default, say so
                log.error("threshold override %s v%d ignored: %s", o.rule, o.version, exc)
                continue
        usable.append(o)
    return usable
