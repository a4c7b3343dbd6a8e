"""TimescaleDB (or plain PostgreSQL) storage: schema, batched idempotent writer, registry."""

from __future__ import annotations

from ._maintenance import MaintenanceReport, run_maintenance
from ._registry import load_active_bindings, upsert_bindings
from ._schema import (
    Flavour,
    SchemaInfo,
    SchemaOptions,
    migrate,
    recorded_flavour,
    statements_for,
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
    "AlertEventRow",
    "BatchWriter",
    "DeadLetterRow",
    "Flavour",
    "MaintenanceReport",
    "ReadingRow",
    "SchemaInfo",
    "SchemaOptions",
    "WriteMethod",
    "WriteResult",
    "load_active_bindings",
    "migrate",
    "recorded_flavour",
    "run_maintenance",
    "statements_for",
    "upsert_bindings",
]
