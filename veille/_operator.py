"""Who is at the command line, for the audit trail: ``cli:<os user>`` on ``cli@<host>``."""

from __future__ import annotations

import getpass
import socket

from store import AuditEntry

__all__ = ["OPERATOR_ROLE", "operator_entry"]

OPERATOR_ROLE = "operator"  # the commands run with the registry's rights, not a clinician's


def operator_entry(
    action: str,
    *,
    patient: str | None = None,
    tenant: str | None = None,
    care_unit: str | None = None,
    **detail: object,
) -> AuditEntry:
    """An audit row for a command that read patient data or acted on an alert."""
    return AuditEntry(
        actor=f"cli:{getpass.getuser()}", actor_role=OPERATOR_ROLE, action=action,
        source=f"cli@{socket.gethostname()}", patient=patient, tenant=tenant,
        care_unit=care_unit, detail=detail,
    )  # fmt: skip
