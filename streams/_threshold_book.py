"""The worker's cache of the thresholds in force, kept in step with where they are stored.

Overrides live in the database (``threshold_overrides``, versioned); the worker caches the
effective ones and reloads them when they change. What it reads them from is an
:class:`OverrideSource` (``store.StoredOverrides``), so this module needs no SQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

from ._news2 import SpO2Scale
from ._thresholds import (
    RuleSet,
    ThresholdSetting,
    effective_rules,
    effective_spo2_scale,
    usable_settings,
)

__all__ = ["OverrideSource", "ThresholdBook"]

Scope = tuple[str, str, str]  # tenant, care unit, patient
Found = TypeVar("Found")
Found_co = TypeVar("Found_co", covariant=True)


class OverrideSource(Protocol):
    async def load(self) -> Sequence[ThresholdSetting]:
        """The overrides in force now (latest active version of each scope)."""
        ...

    async def follow(self, on_change: Callable[[], Awaitable[None]]) -> None:
        """Call ``on_change`` after every change and every reconnect; runs until cancelled."""
        ...


class _Effective(Protocol[Found_co]):
    """``effective_rules`` or ``effective_spo2_scale``."""

    def __call__(
        self, overrides: Sequence[ThresholdSetting], *, tenant: str, care_unit: str, patient: str
    ) -> Found_co: ...


class ThresholdBook:
    """Cached effective overrides; one rule set per (tenant, care unit, patient) on demand."""

    def __init__(self, source: OverrideSource) -> None:
        self._source = source
        self._overrides: list[ThresholdSetting] = []
        self._rules: dict[Scope, RuleSet] = {}
        self._scales: dict[Scope, SpO2Scale] = {}
        self._loaded = asyncio.Event()

    @property
    def loaded(self) -> bool:
        """Loaded at least once (the readiness check)."""
        return self._loaded.is_set()

    async def wait_loaded(self) -> None:
        """Detection must not start on defaults when a patient has an override."""
        await self._loaded.wait()

    def rules_for(self, tenant: str, care_unit: str, patient: str) -> RuleSet:
        return self._cached(self._rules, effective_rules, (tenant, care_unit, patient))

    def spo2_scale_for(self, tenant: str, care_unit: str, patient: str) -> SpO2Scale:
        return self._cached(self._scales, effective_spo2_scale, (tenant, care_unit, patient))

    def _cached(
        self, cache: dict[Scope, Found], effective: _Effective[Found], scope: Scope
    ) -> Found:
        found = cache.get(scope)
        if found is None:
            tenant, care_unit, patient = scope
            found = effective(self._overrides, tenant=tenant, care_unit=care_unit, patient=patient)
            cache[scope] = found
        return found

    async def refresh(self) -> None:
        usable = usable_settings(await self._source.load())
        self._overrides, self._rules, self._scales = usable, {}, {}
        self._loaded.set()

    async def listen(self) -> None:
        """Reload on every change; reconnects with backoff, runs until cancelled."""
        await self._source.follow(self.refresh)
