"""statements_for: the SQL text of the TimescaleDB and plain-PostgreSQL branches."""

from __future__ import annotations

import re

import pytest

from store import Flavour, SchemaOptions, statements_for

OPTIONS = SchemaOptions(
    retention_days=90, compress_after_days=3, partitions_back_days=5, partitions_ahead_days=4
)
TIMESCALE_FUNCTIONS = (
    "create_hypertable",
    "time_bucket",
    "add_compression_policy",
    "add_retention_policy",
    "add_continuous_aggregate_policy",
    "timescaledb",
)


def _flat(statement: str) -> str:
    return " ".join(statement.split())


def statements(flavour: Flavour, options: SchemaOptions = OPTIONS) -> list[str]:
    return [_flat(s) for s in statements_for(flavour, options)]


def only(statements: list[str], needle: str) -> str:
    found = [s for s in statements if needle in s]
    assert len(found) == 1, f"{needle!r} in {len(found)} statements"
    return found[0]


# -- TimescaleDB --------------------------------------------------------------------------------


def test_timescale_creates_the_extension_first() -> None:
    assert statements(Flavour.TIMESCALE)[0] == "CREATE EXTENSION IF NOT EXISTS timescaledb"


def test_timescale_readings_is_a_daily_hypertable() -> None:
    hypertable = only(statements(Flavour.TIMESCALE), "create_hypertable")
    assert "create_hypertable('readings'" in hypertable
    assert "by_range('measured_at', INTERVAL '1 day')" in hypertable
    assert "if_not_exists => TRUE" in hypertable


def test_timescale_has_a_continuous_aggregate_with_a_policy() -> None:
    sql = statements(Flavour.TIMESCALE)
    view = only(sql, "readings_1m WITH (timescaledb.continuous)")
    assert view.startswith("CREATE MATERIALIZED VIEW IF NOT EXISTS readings_1m")
    assert "time_bucket(INTERVAL '1 minute', measured_at)" in view
    assert "WITH NO DATA" in view
    policy = only(sql, "add_continuous_aggregate_policy('readings_1m'")
    assert "'readings_1m'" in policy


def test_timescale_compression_policy_uses_the_configured_days() -> None:
    sql = statements(Flavour.TIMESCALE)
    assert "timescaledb.compress," in only(sql, "timescaledb.compress_segmentby")
    policy = only(sql, "add_compression_policy")
    assert "add_compression_policy('readings', INTERVAL '3 days'" in policy


@pytest.mark.parametrize("days", [1, 90, 365, 3650])
def test_timescale_retention_policy_uses_the_configured_days(days: int) -> None:
    sql = statements(Flavour.TIMESCALE, SchemaOptions(retention_days=days))
    policy = only(sql, "add_retention_policy")
    assert f"add_retention_policy('readings', INTERVAL '{days} days'" in policy


def test_default_retention_is_one_year() -> None:
    policy = only(statements(Flavour.TIMESCALE, SchemaOptions()), "add_retention_policy")
    assert "INTERVAL '365 days'" in policy


def test_timescale_readings_are_not_partitioned_by_hand() -> None:
    text = "\n".join(statements(Flavour.TIMESCALE))
    assert "PARTITION BY" not in text
    assert "veille_ensure_partitions" not in text


# -- plain PostgreSQL ---------------------------------------------------------------------------


def test_postgres_readings_is_range_partitioned_with_a_default_partition() -> None:
    sql = statements(Flavour.POSTGRES)
    table = only(sql, "CREATE TABLE IF NOT EXISTS readings (")
    assert table.endswith("PARTITION BY RANGE (measured_at)")
    assert "CREATE TABLE IF NOT EXISTS readings_default PARTITION OF readings DEFAULT" in sql


def test_postgres_creates_daily_partitions_around_today() -> None:
    sql = statements(Flavour.POSTGRES)
    assert "SELECT veille_ensure_partitions(5, 4)" in sql
    function = only(sql, "FUNCTION veille_ensure_partitions")
    assert "PARTITION OF readings FOR VALUES FROM" in function
    assert "FUNCTION veille_drop_partitions_before" in "\n".join(sql)


def test_postgres_has_a_brin_index_on_time() -> None:
    brin = only(statements(Flavour.POSTGRES), "USING brin")
    assert brin == (
        "CREATE INDEX IF NOT EXISTS readings_time_brin ON readings USING brin (measured_at)"
    )


def test_postgres_rollup_is_a_materialized_view_with_a_unique_index() -> None:
    sql = statements(Flavour.POSTGRES)
    view = only(sql, "MATERIALIZED VIEW IF NOT EXISTS readings_1m")
    assert view.startswith("CREATE MATERIALIZED VIEW IF NOT EXISTS readings_1m AS")
    assert "date_bin(INTERVAL '1 minute', measured_at" in view
    index = only(sql, "ON readings_1m")
    assert index.startswith("CREATE UNIQUE INDEX IF NOT EXISTS")
    # REFRESH ... CONCURRENTLY needs the unique index to cover every grouping column
    index_match = re.search(r"ON readings_1m \(([^)]*)\)", index)
    group_match = re.search(r"GROUP BY (.*) WITH NO DATA$", view)
    assert index_match is not None and group_match is not None
    covered = {c.strip() for c in index_match.group(1).split(",")}
    grouped = {c.strip() for c in group_match.group(1).split(",")} - {"1"}
    assert grouped | {"bucket"} == covered


@pytest.mark.parametrize("function", TIMESCALE_FUNCTIONS)
def test_postgres_uses_no_timescale_function(function: str) -> None:
    assert function not in "\n".join(statements(Flavour.POSTGRES)).lower()


# -- both ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", list(Flavour))
def test_readings_natural_key_is_unique(flavour: Flavour) -> None:
    key = only(statements(flavour), "readings_natural_key")
    assert key == (
        "CREATE UNIQUE INDEX IF NOT EXISTS readings_natural_key "
        "ON readings (device_id, metric, measured_at, seq)"
    )


@pytest.mark.parametrize("flavour", list(Flavour))
def test_every_statement_is_idempotent(flavour: Flavour) -> None:
    """Migrations are re-run at every start: each CREATE must tolerate existing objects."""
    for statement in statements(flavour):
        if statement.startswith("CREATE"):
            assert "IF NOT EXISTS" in statement or statement.startswith("CREATE OR REPLACE"), (
                statement
            )
        if statement.startswith("SELECT add_") or "create_hypertable" in statement:
            assert "if_not_exists => TRUE" in statement, statement


@pytest.mark.parametrize("flavour", list(Flavour))
def test_common_tables_exist_in_both_flavours(flavour: Flavour) -> None:
    text = "\n".join(statements(flavour))
    for table in ("veille_schema", "devices", "readings", "alerts", "alert_events", "dead_letters"):
        assert f"CREATE TABLE IF NOT EXISTS {table} (" in text


def test_schema_table_records_the_flavour_name() -> None:
    assert {f.value for f in Flavour} == {"timescaledb", "postgresql"}
