"""Who is calling and what they may see: one tenant, the care units they are a member of.

Every query of :mod:`clinic._queries` takes a :class:`CareScope` as a parameter and filters
on it in SQL; nothing is fetched first and filtered in Python. Something outside the scope
answers as if it did not exist (404), so ids cannot be probed.
"""

from __future__ import annotations

from dataclasses import dataclass

from store import ClinicianRole

__all__ = ["Caller", "CareScope"]


@dataclass(frozen=True, slots=True)
class CareScope:
    tenant: str
    care_units: tuple[str, ...]

    def narrowed(self, care_unit: str | None) -> CareScope:
        """Only ``care_unit`` if given: a unit outside the scope narrows to nothing."""
        if care_unit is None:
            return self
        units = (care_unit,) if care_unit in self.care_units else ()
        return CareScope(self.tenant, units)


@dataclass(frozen=True, slots=True)
class Caller:
    clinician_id: int
    username: str
    display_name: str
    role: ClinicianRole
    scope: CareScope
    session_digest: bytes | None = None  # None when authenticated by an OIDC token

    @property
    def may_change_thresholds(self) -> bool:
        return self.role in (ClinicianRole.PHYSICIAN, ClinicianRole.ADMIN)
