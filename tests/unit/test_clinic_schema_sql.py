"""Schema v5: the clinic's tables and the one-hour rollup, in both flavours."""

from __future__ import annotations

import re

import pytest

from store import Flavour, SchemaOptions, statements_for
from store._schema import SCHEMA_VERSION, UPGRADES

CLINIC_TABLES = (
    "clinicians",
    "care_unit_members",
    "clinician_sessions",
    "webhook_subscriptions",
    "webhook_deliveries",
)


def _sql(flavour: Flavour) -> list[str]:
    return [" ".join(s.split()) for s in statements_for(flavour, SchemaOptions())]


def _only(statements: list[str], needle: str) -> str:
    found = [s for s in statements if needle in s]
    assert len(found) == 1, f"{needle!r} in {len(found)} statements"
    return found[0]


def test_schema_version_is_eight() -> None:
    # v5 the clinic's tables, v6 component roles and row-level security, v7 the audit trail,
    # GHT sharing grants and the patients' display identity, v8 readings' natural key alone
    assert SCHEMA_VERSION == 8


@pytest.mark.parametrize("flavour", list(Flavour))
def test_readings_have_no_patient_index_and_bindings_are_found_by_patient(
    flavour: Flavour,
) -> None:
    """Every B-tree on readings costs each stored row an insert (issue 14): the clinic reads a
    patient through device_bindings' patient index and the natural key."""
    sql = _sql(flavour)
    on_readings = [s for s in sql if "INDEX" in s and " ON readings (" in s]  # B-trees
    assert len(on_readings) == 1
    assert "readings_natural_key" in on_readings[0]
    assert "(device_id, metric, measured_at, seq)" in on_readings[0]
    _only(sql, "CREATE INDEX IF NOT EXISTS device_bindings_patient")
    assert "DROP INDEX IF EXISTS readings_patient_time" in UPGRADES[8]


@pytest.mark.parametrize("flavour", list(Flavour))
@pytest.mark.parametrize("table", CLINIC_TABLES)
def test_clinic_tables_exist_in_both_flavours(flavour: Flavour, table: str) -> None:
    _only(_sql(flavour), f"CREATE TABLE IF NOT EXISTS {table} (")


@pytest.mark.parametrize("flavour", list(Flavour))
def test_usernames_are_unique_per_tenant_and_roles_are_closed(flavour: Flavour) -> None:
    table = _only(_sql(flavour), "CREATE TABLE IF NOT EXISTS clinicians (")
    assert "UNIQUE (tenant, username)" in table
    assert "CHECK (role IN ('nurse', 'physician', 'admin'))" in table


@pytest.mark.parametrize("flavour", list(Flavour))
def test_sessions_keep_a_hash_of_the_token_only(flavour: Flavour) -> None:
    table = _only(_sql(flavour), "CREATE TABLE IF NOT EXISTS clinician_sessions (")
    assert "token_hash bytea PRIMARY KEY" in table
    assert re.search(r"\btoken\b(?!_hash)", table) is None


@pytest.mark.parametrize("flavour", list(Flavour))
def test_a_delivery_is_recorded_once_per_subscription_and_event(flavour: Flavour) -> None:
    table = _only(_sql(flavour), "CREATE TABLE IF NOT EXISTS webhook_deliveries (")
    assert "UNIQUE (subscription, alert_id, event_kind, event_at)" in table
    assert "CHECK (status IN ('pending', 'delivered', 'failed'))" in table


def test_timescale_hour_rollup_is_a_continuous_aggregate_with_a_policy() -> None:
    sql = _sql(Flavour.TIMESCALE)
    view = _only(sql, "readings_1h WITH (timescaledb.continuous)")
    assert "time_bucket(INTERVAL '1 hour', measured_at)" in view and "WITH NO DATA" in view
    policy = _only(sql, "add_continuous_aggregate_policy('readings_1h'")
    assert "if_not_exists => TRUE" in policy


def test_postgres_hour_rollup_is_a_materialized_view_refreshable_concurrently() -> None:
    sql = _sql(Flavour.POSTGRES)
    view = _only(sql, "MATERIALIZED VIEW IF NOT EXISTS readings_1h")
    assert "date_bin(INTERVAL '1 hour', measured_at" in view
    index = _only(sql, "ON readings_1h (")
    assert index.startswith("CREATE UNIQUE INDEX IF NOT EXISTS readings_1h_key")
    assert "timescaledb" not in view
