"""The thresholds in force for a patient: default, else the care unit's, else the patient's.

Overrides live in the database (``threshold_overrides``, versioned); the worker caches the
effective ones and reloads them when they change (``LISTEN veille_thresholds``).
"""

from __future__ import annotations

import asyncio
import logging
from types import MappingProxyType

import psycopg

from store import ThresholdOverride, load_effective_overrides

from ._detect import DEFAULT_RULES, RULES_BY_ID, ThresholdRule, rules_by_metric
from ._news2 import SpO2Scale
from ._notify import follow_notifications

__all__ = [
    "SPO2_SCALE_SETTING",
    "RuleSet",
    "ThresholdBook",
    "effective_rules",
    "effective_spo2_scale",
]

# NEWS2's SpO2 scale is prescribed per patient (or for a whole respiratory unit). It is kept
# as an override of this pseudo-rule, ``limit`` holding the scale: the same versioning, the
# same who-and-why history and the same reload on NOTIFY as any threshold.
SPO2_SCALE_SETTING = "news2_spo2_scale"

log = logging.getLogger(__name__)

CHANNEL = "veille_thresholds"
RuleSet = MappingProxyType[str, tuple[ThresholdRule, ...]]
_DEFAULT_SET: RuleSet = rules_by_metric(DEFAULT_RULES)


def effective_rules(
    overrides: list[ThresholdOverride], *, tenant: str, care_unit: str, patient: str
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
    overrides: list[ThresholdOverride], *, tenant: str, care_unit: str, patient: str
) -> SpO2Scale:
    """Patient setting beats care-unit setting beats scale 1."""
    mine = [o for o in overrides if o.tenant == tenant and o.rule == SPO2_SCALE_SETTING]
    for o in (*[o for o in mine if o.patient == patient],
              *[o for o in mine if o.patient is None and o.care_unit == care_unit]):  # fmt: skip
        if o.limit is not None:
            return SpO2Scale(int(o.limit))
    return SpO2Scale.SCALE_1


class ThresholdBook:
    """Cached effective overrides; one rule set per (tenant, care unit, patient) on demand."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._overrides: list[ThresholdOverride] = []
        self._cache: dict[tuple[str, str, str], RuleSet] = {}
        self._scales: dict[tuple[str, str, str], SpO2Scale] = {}
        self._loaded = asyncio.Event()

    async def wait_loaded(self) -> None:
        """Detection must not start on defaults when a patient has an override."""
        await self._loaded.wait()

    def rules_for(self, tenant: str, care_unit: str, patient: str) -> RuleSet:
        key = (tenant, care_unit, patient)
        found = self._cache.get(key)
        if found is None:
            found = effective_rules(
                self._overrides, tenant=tenant, care_unit=care_unit, patient=patient
            )
            self._cache[key] = found
        return found

    def spo2_scale_for(self, tenant: str, care_unit: str, patient: str) -> SpO2Scale:
        key = (tenant, care_unit, patient)
        found = self._scales.get(key)
        if found is None:
            found = effective_spo2_scale(
                self._overrides, tenant=tenant, care_unit=care_unit, patient=patient
            )
            self._scales[key] = found
        return found

    async def refresh(self) -> None:
        async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
            overrides = await load_effective_overrides(conn)
        valid = []
        for o in overrides:
            if o.rule == SPO2_SCALE_SETTING:
                if o.limit in (1, 2):
                    valid.append(o)
                else:
                    log.error("SpO2 scale %s v%d ignored: not 1 or 2", o.limit, o.version)
                continue
            try:
                effective_rules(
                    [o], tenant=o.tenant, care_unit=o.care_unit or "", patient=o.patient or ""
                )
            except ValueError as exc:  # stored before a rule changed: keep the default, say so
                log.error("threshold override %s v%d ignored: %s", o.rule, o.version, exc)
                continue
            valid.append(o)
        self._overrides, self._cache, self._scales = valid, {}, {}
        self._loaded.set()

    async def listen(self) -> None:
        await follow_notifications(self._conninfo, CHANNEL, self.refresh)
