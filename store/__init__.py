"""TimescaleDB (or plain PostgreSQL) storage: schema, batched idempotent writer, registry."""

from __future__ import annotations

from ._access import (
    PATIENT_DEVICES_FUNCTION,
    ROLE_NAMES,
    SHARED_WITH_FUNCTION,
    enter_care_context,
)
from ._alert_board import OpenAlertCount, open_alert_counts
from ._audit import AuditEntry, list_audit, record_audit, verify_audit_chain
from ._audit_chain import (
    AuditRow,
    ChainReport,
    ChainVerifier,
    audit_row_hash,
    canonical_audit_row,
)
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
from ._reading_keys import missing_reading_keys, save_reading_keys
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
from ._restore_point import DatabaseDigests, database_digests, mark_restore_point
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
    ReadingBatches,
    ReadingRow,
    WriteMethod,
    WriteResult,
)

__all__ = [
    "PATIENT_DEVICES_FUNCTION",
    "ROLE_NAMES",
    "SHARED_WITH_FUNCTION",
    "enter_care_context",
    "AuditEntry",
    "AuditRow",
    "CareGrant",
    "ChainReport",
    "ChainVerifier",
    "PatientAdmission",
    "add_grant",
    "admit_patient",
    "audit_row_hash",
    "canonical_audit_row",
    "discharge_patient",
    "list_audit",
    "list_grants",
    "record_audit",
    "revoke_grant",
    "verify_audit_chain",
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
    "DatabaseDigests",
    "database_digests",
    "mark_restore_point",
    "missing_reading_keys",
    "save_reading_keys",
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
    "ReadingBatches",
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
    "OpenAlertCount",
    "open_alert_counts",
    "statements_for",
    "threshold_history",
    "upsert_bindings",
]
