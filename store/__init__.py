"""TimescaleDB (or plain PostgreSQL) storage: schema, batched idempotent writer, registry."""

from __future__ import annotations

from ._access import ROLE_NAMES, SHARED_WITH_FUNCTION, enter_care_context
from ._backup import back_up, restore
from ._backup_digests import schema_digests, table_digests
from ._backup_manifest import (
    BackupManifest,
    RestoreReport,
    TableDigest,
    compare_schema,
    compare_tables,
    manifest_path,
    read_verified_manifest,
)
from ._clinicians import (
    ClinicianRole,
    ClinicianRow,
    add_clinician,
    disable_clinician,
    find_clinician,
    list_clinicians,
)
from ._credentials import hash_credential, new_credential, verify_credential
from ._grants import CareGrant, add_grant, list_grants, revoke_grant
from ._maintenance import MaintenanceReport, run_maintenance
from ._patients import PatientAdmission, admit_patient, discharge_patient
from ._registry import (
    DeviceRow,
    StoredRegistry,
    add_device,
    bind_device,
    list_devices,
    load_registry,
    record_patient_identity,
    revoke_device,
    rotate_device_credential,
    upsert_bindings,
)
from ._schema import (
    Flavour,
    SchemaInfo,
    SchemaOptions,
    migrate,
    recorded_flavour,
    statements_for,
)
from ._thresholds import (
    StoredOverrides,
    ThresholdOverride,
    load_effective_overrides,
    record_override,
    threshold_history,
)
from ._writer import (
    AlertEventRow,
    BatchWriter,
    DeadLetterRow,
    ReadingRow,
    WriteMethod,
    WriteResult,
)

__all__ = [
    "ROLE_NAMES",
    "SHARED_WITH_FUNCTION",
    "enter_care_context",
    "CareGrant",
    "PatientAdmission",
    "add_grant",
    "admit_patient",
    "discharge_patient",
    "list_grants",
    "revoke_grant",
    "BackupManifest",
    "RestoreReport",
    "TableDigest",
    "back_up",
    "compare_schema",
    "compare_tables",
    "manifest_path",
    "read_verified_manifest",
    "restore",
    "schema_digests",
    "table_digests",
    "ClinicianRole",
    "ClinicianRow",
    "add_clinician",
    "disable_clinician",
    "find_clinician",
    "list_clinicians",
    "AlertEventRow",
    "BatchWriter",
    "DeadLetterRow",
    "Flavour",
    "MaintenanceReport",
    "ReadingRow",
    "SchemaInfo",
    "SchemaOptions",
    "StoredOverrides",
    "StoredRegistry",
    "ThresholdOverride",
    "WriteMethod",
    "WriteResult",
    "DeviceRow",
    "add_device",
    "bind_device",
    "hash_credential",
    "list_devices",
    "load_effective_overrides",
    "load_registry",
    "new_credential",
    "record_override",
    "record_patient_identity",
    "revoke_device",
    "rotate_device_credential",
    "verify_credential",
    "migrate",
    "recorded_flavour",
    "run_maintenance",
    "statements_for",
    "threshold_history",
    "upsert_bindings",
]
