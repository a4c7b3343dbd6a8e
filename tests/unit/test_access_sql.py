"""store._access: the roles' grants and policies as SQL text, and each component's URL."""

from __future__ import annotations

import re

import pytest
from pydantic import SecretStr

from store._access import ROLE_NAMES, access_statements
from veille.settings import Settings

PROTECTED = (
    "alerts", "alert_events", "devices", "device_bindings", "patient_identities",
)  # fmt: skip


def _flat(maintenance: bool = True) -> list[str]:
    return [" ".join(s.split()) for s in access_statements(maintenance_functions=maintenance)]


def _grants_to(role: str) -> list[str]:
    return [s for s in _flat() if s.startswith("GRANT") and re.search(rf"\b{role}\b", s)]


@pytest.mark.parametrize("table", PROTECTED)
def test_every_protected_table_has_rls_and_a_clinic_policy(table: str) -> None:
    sql = _flat()
    assert f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY" in sql
    clinic = [s for s in sql if s.startswith(f"CREATE POLICY clinic_in_context ON {table} ")]
    assert len(clinic) == 1 and "TO veille_clinic" in clinic[0]


def test_policies_are_dropped_before_created_so_a_rerun_works() -> None:
    sql = _flat()
    for i, statement in enumerate(sql):
        if statement.startswith("CREATE POLICY"):
            name_on = statement.split()[2:5]  # name ON table
            assert sql[i - 1] == f"DROP POLICY IF EXISTS {' '.join(name_on)}"


def test_grants_are_revoked_first() -> None:
    sql = _flat()
    first_grant = next(i for i, s in enumerate(sql) if s.startswith("GRANT"))
    assert any(s.startswith("REVOKE ALL ON veille_schema") for s in sql[:first_grant])


IDENTIFYING = {"national_id", "family_name", "given_names", "birth_date", "bed"}


def _identity_columns_readable(role: str) -> set[str]:
    """The columns of patient_identities ``role`` may SELECT ("*" for a whole-row grant)."""
    readable: set[str] = set()
    for statement in _grants_to(role):
        privileges, _, rest = statement.partition(" ON ")
        if "patient_identities" not in rest.split(" TO ")[0].split(", "):
            continue
        for match in re.finditer(r"SELECT(?: \(([^)]*)\))?", privileges):
            readable |= {c.strip() for c in match[1].split(",")} if match[1] else {"*"}
    return readable


def test_only_the_clinic_reads_names_and_nobody_national_ids() -> None:
    """Column grants: the registry's ON CONFLICT needs the pseudonym and the establishment,
    the clinic the display identity; no role reads the whole row or the national id."""
    readable = {
        component: _identity_columns_readable(role) for component, role in ROLE_NAMES.items()
    }
    assert readable["sink"] == readable["worker"] == set()
    assert readable["registry"] == {"patient_pseudonym", "tenant"}
    assert IDENTIFYING - {"national_id"} <= readable["clinic"]
    assert "national_id" not in readable["clinic"] and "*" not in readable["clinic"]


def test_grants_and_identities_are_under_row_level_security() -> None:
    sql = _flat()
    assert "ALTER TABLE care_grants ENABLE ROW LEVEL SECURITY" in sql
    shared = [s for s in sql if s.startswith("CREATE POLICY clinic_in_context ON ")
              and "veille_shared_with(" in s]  # fmt: skip
    tables = {s.split()[4] for s in shared}
    assert tables == {"alerts", "patient_identities"}  # alert_events via alerts
    views = [s for s in sql if s.startswith("CREATE OR REPLACE VIEW")]
    assert len(views) == 3  # readings and both rollups
    assert all("veille_shared_with(" in v for v in views)


def test_the_clinic_reads_readings_and_rollups_only_through_filtered_views() -> None:
    """TimescaleDB refuses RLS on a compressed hypertable; a rollup is a materialized view."""
    clinic = " ".join(_grants_to("veille_clinic"))
    assert not re.search(r"\breadings(_1[mh])?\b(?!_visible)", clinic)
    assert not any(s.startswith("ALTER TABLE readings ") for s in _flat())
    views = [s for s in _flat() if s.startswith("CREATE OR REPLACE VIEW")]
    assert [v.split()[4] for v in views] == [
        "readings_visible",
        "readings_1m_visible",
        "readings_1h_visible",
    ]
    for view in views:
        assert "WITH (security_barrier)" in view
        assert "veille_context_tenant()" in view and "veille_context_units()" in view


def test_maintenance_functions_run_as_owner_for_the_sink_only() -> None:
    sql = _flat(maintenance=True)
    assert any("SECURITY DEFINER SET search_path = %I, pg_temp" in s for s in sql)
    executes = [s for s in sql if s.startswith("GRANT EXECUTE") and "veille_refresh" in s]
    assert len(executes) == 1 and executes[0].endswith("TO veille_sink")
    assert not any("veille_refresh_rollups" in s for s in _flat(maintenance=False))


def test_only_the_readers_of_patients_may_list_a_patients_devices() -> None:
    """veille_patient_devices runs as the owner (the clinic sees no binding of another
    establishment), so only the clinic and the registry may call it, on both flavours."""
    for maintenance in (True, False):
        sql = _flat(maintenance=maintenance)
        on_it = [s for s in sql if "FUNCTION veille_patient_devices(text)" in s]
        assert any("SECURITY DEFINER" in s for s in sql if "veille_patient_devices" in s)
        assert [s for s in on_it if s.startswith("REVOKE")] == [
            "REVOKE ALL ON FUNCTION veille_patient_devices(text) FROM PUBLIC, veille_sink, "
            "veille_worker, veille_registry, veille_clinic"
        ]
        grants = [s for s in on_it if s.startswith("GRANT")]
        assert grants == [
            "GRANT EXECUTE ON FUNCTION veille_patient_devices(text) TO veille_clinic, "
            "veille_registry"
        ]


def test_a_component_without_its_own_url_falls_back_to_the_owners() -> None:
    settings = Settings(
        database_url=SecretStr("postgresql://owner@db/veille"),
        clinic_database_url=SecretStr("postgresql://veille_clinic@db/veille"),
    )
    assert (
        settings.database_url_for("clinic").get_secret_value().startswith("postgresql://veille_c")
    )
    assert settings.database_url_for("sink").get_secret_value() == "postgresql://owner@db/veille"


def test_the_audit_trail_is_appended_by_the_clinic_and_registry_and_read_by_nobody() -> None:
    for component, role in ROLE_NAMES.items():
        on_audit = [s for s in _grants_to(role) if " ON audit_events " in s
                    or " ON audit_chain_head" in s]  # fmt: skip
        if component in ("clinic", "registry"):
            assert len(on_audit) == 1, role
            privileges = on_audit[0].split(" ON ")[0]
            assert privileges.startswith("GRANT INSERT (") and "SELECT" not in privileges
            for column in ("id", "at", "db_user", "prev_hash", "row_hash"):
                assert not re.search(rf"[(,] ?{column}\b", privileges), column
        else:
            assert on_audit == [], role
    assert any("ALTER FUNCTION veille_audit_chain() SECURITY DEFINER" in s for s in _flat(False))
