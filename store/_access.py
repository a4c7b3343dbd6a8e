"""Who may do what in the database: one PostgreSQL role per component, and row-level security.

The role that runs the migrations owns every object. The others get exactly what their SQL
needs (docs/SECURITY.md, "Database roles"):

- ``veille_sink`` writes readings, alerts, alert events and dead letters, and runs the
  plain-PostgreSQL maintenance through ``SECURITY DEFINER`` functions; it reads no identity.
- ``veille_worker`` reads the registry and the threshold overrides (and LISTENs to them).
- ``veille_registry`` is the operator's commands (devices, users, thresholds, webhooks,
  ``veille alerts``, ``veille fhir export``) and the webhook dispatcher: every tenant, but
  identities only written, never read.
- ``veille_clinic`` is the clinicians' service: patient data only through row-level security
  scoped by the establishment and care units it sets per transaction
  (:func:`enter_care_context`); with none set, it sees no row.
- the audit trail (:mod:`store._audit`): the clinic and the registry may INSERT its
  descriptive columns, nothing more; only the owner reads it (``veille audit``).

PostgreSQL applies no row-level security through a materialized view or a continuous
aggregate, and TimescaleDB refuses row-level security on a compressed hypertable
(timescale/timescaledb#6827) and would not carry a policy to the chunks, which inherit the
hypertable's grants (#7830). So the clinic reads readings and rollups only through
``readings_visible``, ``readings_1m_visible`` and ``readings_1h_visible``: security-barrier
views, run with the owner's rights, filtering by the same context; it holds no privilege on
``readings`` itself, and ``readings`` has no policy on either flavour.

GHT sharing: a patient's readings, rollups, alerts, alert events and identity are also
visible to a (tenant, care unit) holding an active grant for them in ``care_grants`` (not
revoked, ``now() < expires_at``): the policies compare with ``now()``, so a grant ends by
itself at its expiry, with no job to run. :func:`veille_shared_with` is the one definition
the policies, the rollup views and the clinic's queries share; it reads ``care_grants`` as
the caller, under that table's own policy (grants *to* the caller's context), which reads no
other table: no policy recursion, no ``SECURITY DEFINER``.

Every statement is idempotent; :func:`access_statements` first revokes what the roles hold,
then grants, so a re-run converges on this file even after a privilege was removed from it.
Run them in one transaction: no moment is left with a policy dropped but not yet recreated.
"""

from __future__ import annotations

from typing import Final

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow

from veille.errors import StoreError

from ._audit import AUDIT_FUNCTIONS, AUDIT_WRITABLE_COLUMNS

__all__ = [
    "CARE_UNITS_SETTING",
    "PATIENT_DEVICES_FUNCTION",
    "ROLE_NAMES",
    "SHARED_WITH_FUNCTION",
    "TENANT_SETTING",
    "access_statements",
    "enter_care_context",
    "ensure_roles",
]

# component (veille.settings.DatabaseComponent) -> the PostgreSQL role its SQL is granted to
ROLE_NAMES: Final = {
    "sink": "veille_sink",
    "worker": "veille_worker",
    "registry": "veille_registry",
    "clinic": "veille_clinic",
}
SINK, WORKER, REGISTRY, CLINIC = (ROLE_NAMES[c] for c in ("sink", "worker", "registry", "clinic"))
TENANT_SETTING = "veille.tenant"
CARE_UNITS_SETTING = "veille.care_units"

# Every table and view a component role could have been granted something on.
_RELATIONS = (
    "veille_schema", "devices", "device_bindings", "patient_identities", "readings",
    "readings_1m", "readings_1h", "readings_visible", "readings_1m_visible",
    "readings_1h_visible", "alerts",
    "alert_events", "dead_letters", "threshold_overrides", "clinicians", "care_unit_members",
    "clinician_sessions", "webhook_subscriptions", "webhook_deliveries", "audit_events",
    "audit_chain_head", "care_grants",
)  # fmt: skip
_SEQUENCES = ("clinicians_id_seq", "threshold_overrides_id_seq", "webhook_deliveries_id_seq")
_MAINTENANCE_FUNCTIONS = (
    "veille_ensure_partitions(integer, integer)",
    "veille_drop_partitions_before(date)",
    "veille_refresh_rollups()",
)
_ALL = ", ".join(ROLE_NAMES.values())

# The caller's context: NULL / empty when nothing was set (a pooled connection after the
# transaction that set it: set_config(..., true) leaves an empty string behind).
_CONTEXT_FUNCTIONS = [
    f"""CREATE OR REPLACE FUNCTION veille_context_tenant() RETURNS text
        LANGUAGE sql STABLE PARALLEL SAFE
        AS $$ SELECT nullif(current_setting('{TENANT_SETTING}', true), '') $$""",
    f"""CREATE OR REPLACE FUNCTION veille_context_units() RETURNS text[]
        LANGUAGE sql STABLE PARALLEL SAFE
        AS $$ SELECT coalesce(nullif(current_setting('{CARE_UNITS_SETTING}', true), '')::text[],
                              '{{}}'::text[]) $$""",
]
# The patients shared with (tenant, care units) by an active grant, as (from tenant,
# pseudonym). Runs as the caller: the clinic sees only the grants to its own context.
SHARED_WITH_FUNCTION = "veille_shared_with"
_SHARING_FUNCTIONS = [
    f"""CREATE OR REPLACE FUNCTION {SHARED_WITH_FUNCTION}(to_tenant text, to_units text[])
        RETURNS TABLE (tenant text, patient_pseudonym text)
        LANGUAGE sql STABLE PARALLEL SAFE
        AS $$ SELECT g.from_tenant, g.patient_pseudonym FROM care_grants g
              WHERE g.to_tenant = $1 AND g.to_care_unit = ANY ($2)
                AND g.revoked_at IS NULL AND now() < g.expires_at $$""",  # noqa: S608
]
# The devices a patient's readings may come from, as far as the caller's context may see
# them: bound to the patient in one of its units, or bound anywhere to a patient shared with
# one of them. readings has no patient index (each one cost a stored row 40 % of the
# database's CPU, issue 14): a patient's readings are read through the natural key (device,
# metric, time, seq), ``device_id = ANY (veille_patient_devices(p))`` beside
# ``patient_pseudonym = p``. A reading's patient and unit are those of the binding
# the validator found, and every binding is kept in device_bindings, so the devices listed
# are all those of the rows the caller may see. Runs as the owner (the clinic sees no
# binding of another establishment: test_care_grants), and answers only what the context may
# see anyway: a shared patient's readings carry their device ids.
PATIENT_DEVICES_FUNCTION = "veille_patient_devices"
_PATIENT_DEVICES_FUNCTIONS = [
    f"""CREATE OR REPLACE FUNCTION {PATIENT_DEVICES_FUNCTION}(patient text) RETURNS text[]
        LANGUAGE sql STABLE PARALLEL SAFE
        AS $$ SELECT coalesce(array_agg(DISTINCT b.device_id ORDER BY b.device_id), '{{}}')
              FROM device_bindings b
              WHERE b.patient_pseudonym = $1
                AND ((b.tenant = veille_context_tenant()
                      AND b.care_unit = ANY (veille_context_units()))
                     OR (b.tenant, b.patient_pseudonym) IN (
                         SELECT s.tenant, s.patient_pseudonym
                         FROM {SHARED_WITH_FUNCTION}(veille_context_tenant(),
                                                     veille_context_units()) s)) $$""",  # noqa: S608
]
_PATIENT_DEVICES_SIGNATURE = f"{PATIENT_DEVICES_FUNCTION}(text)"
# (SELECT ...) makes each an init-plan: evaluated once per query, not once per row.
_CONTEXT_TENANT = "(SELECT veille_context_tenant())"
_CONTEXT_UNITS = "(SELECT veille_context_units())::text[]"
_IN_CONTEXT = f"tenant = {_CONTEXT_TENANT} AND care_unit = ANY ({_CONTEXT_UNITS})"
# An uncorrelated IN: one hashed sub-plan per query.
_SHARED_IN_CONTEXT = (
    f"(tenant, patient_pseudonym) IN (SELECT s.tenant, s.patient_pseudonym FROM "  # noqa: S608
    f"{SHARED_WITH_FUNCTION}({_CONTEXT_TENANT}, {_CONTEXT_UNITS}) s)"
)
_VISIBLE = f"({_IN_CONTEXT}) OR {_SHARED_IN_CONTEXT}"

_VISIBLE_VIEW_NAMES = ("readings_visible", "readings_1m_visible", "readings_1h_visible")
_VISIBLE_VIEWS = [
    f"""CREATE OR REPLACE VIEW {source}_visible WITH (security_barrier) AS
        SELECT * FROM {source} WHERE {_VISIBLE}"""  # noqa: S608 - this module's constants
    for source in ("readings", "readings_1m", "readings_1h")
]

_GRANTS = [
    f"GRANT SELECT ON veille_schema TO {_ALL}",
    # sink: appends, and moves alerts along their lifecycle (the writer's UPDATEs)
    f"GRANT INSERT ON readings, alert_events, dead_letters TO {SINK}",
    # ON CONFLICT (columns) reads those columns to find the conflicting row: SELECT on them.
    f"GRANT SELECT (alert_id, kind, at) ON alert_events TO {SINK}",
    f"GRANT SELECT (dead_letter_id) ON dead_letters TO {SINK}",
    f"""GRANT SELECT, INSERT, UPDATE (priority, escalation_level, state, acknowledged_at,
        acknowledged_by, resolved_at, resolved_by, updated_at) ON alerts TO {SINK}""",
    # worker: the caches of the registry and the thresholds
    f"GRANT SELECT ON devices, threshold_overrides TO {WORKER}",
    # registry: the operator's commands and the webhook dispatcher
    f"GRANT SELECT, INSERT, UPDATE ON devices, device_bindings TO {REGISTRY}",
    # Identities written (`veille patients admit`), never read back: the pseudonym and the
    # establishment only (ON CONFLICT, and which establishment a grant shares from).
    f"GRANT INSERT, SELECT (patient_pseudonym, tenant) ON patient_identities TO {REGISTRY}",
    f"""GRANT UPDATE (family_name, given_names, birth_date, care_unit, bed, national_id,
        admitted_at, discharged_at) ON patient_identities TO {REGISTRY}""",
    f"GRANT SELECT, INSERT, UPDATE (revoked_at, revoked_by) ON care_grants TO {REGISTRY}",
    f"GRANT SELECT, INSERT, UPDATE ON clinicians TO {REGISTRY}",
    f"GRANT SELECT, INSERT ON care_unit_members TO {REGISTRY}",
    f"GRANT SELECT, UPDATE (revoked_at) ON clinician_sessions TO {REGISTRY}",
    f"GRANT SELECT, INSERT ON threshold_overrides TO {REGISTRY}",
    f"GRANT SELECT ON readings, alerts, alert_events, dead_letters TO {REGISTRY}",
    # `veille fhir export`: the patient's readings in the scope it set, as the clinic reads
    f"GRANT SELECT ON readings_visible TO {REGISTRY}",
    f"GRANT SELECT, INSERT, UPDATE ON webhook_subscriptions, webhook_deliveries TO {REGISTRY}",
    f"""GRANT USAGE ON SEQUENCE clinicians_id_seq, threshold_overrides_id_seq,
        webhook_deliveries_id_seq TO {REGISTRY}""",
    # clinic: patient data under row-level security, its sessions, threshold changes
    f"""GRANT SELECT ON alerts, alert_events, devices, device_bindings, readings_visible,
        readings_1m_visible, readings_1h_visible, care_grants TO {CLINIC}""",
    # The care team's view of a patient; the national identifier stays unread.
    f"""GRANT SELECT (patient_pseudonym, tenant, family_name, given_names, birth_date,
        care_unit, bed, admitted_at, discharged_at) ON patient_identities TO {CLINIC}""",
    f"GRANT SELECT ON clinicians, care_unit_members TO {CLINIC}",
    f"GRANT SELECT, INSERT, UPDATE (revoked_at) ON clinician_sessions TO {CLINIC}",
    f"GRANT SELECT, INSERT ON threshold_overrides TO {CLINIC}",
    f"GRANT USAGE ON SEQUENCE threshold_overrides_id_seq TO {CLINIC}",
    # The audit trail: the clinic and the operator's commands append, nobody but the owner
    # reads (`veille audit`), nobody changes; the trigger fills in id, time and hashes.
    f"GRANT INSERT ({', '.join(AUDIT_WRITABLE_COLUMNS)}) ON audit_events TO {CLINIC}, {REGISTRY}",
]

# (table, policy name, policy text after "ON table"); each dropped then created again.
_POLICIES: list[tuple[str, str, str]] = [
    ("alerts", "clinic_in_context", f"FOR SELECT TO {CLINIC} USING ({_VISIBLE})"),
    ("alerts", "sink_writes", f"FOR ALL TO {SINK} USING (true) WITH CHECK (true)"),
    ("alerts", "registry_reads", f"FOR SELECT TO {REGISTRY} USING (true)"),
    # An event is visible with its alert: the subquery is itself under alerts' policies.
    ("alert_events", "clinic_in_context", f"""FOR SELECT TO {CLINIC} USING (EXISTS (
        SELECT 1 FROM alerts a WHERE a.alert_id = alert_events.alert_id))"""),  # noqa: S608
    ("alert_events", "sink_writes", f"FOR ALL TO {SINK} USING (true) WITH CHECK (true)"),
    ("alert_events", "registry_reads", f"FOR SELECT TO {REGISTRY} USING (true)"),
    ("devices", "clinic_in_context", f"FOR SELECT TO {CLINIC} USING ({_IN_CONTEXT})"),
    ("devices", "worker_reads", f"FOR SELECT TO {WORKER} USING (true)"),
    ("devices", "registry_manages", f"FOR ALL TO {REGISTRY} USING (true) WITH CHECK (true)"),
    ("device_bindings", "clinic_in_context", f"FOR SELECT TO {CLINIC} USING ({_IN_CONTEXT})"),
    ("device_bindings", "registry_manages",
     f"FOR ALL TO {REGISTRY} USING (true) WITH CHECK (true)"),
    # A patient's identity: to the care unit they are admitted in, those they were ever bound
    # in (device_bindings is itself under its policy), and the units they are shared with.
    ("patient_identities", "clinic_in_context", f"""FOR SELECT TO {CLINIC} USING (
        (tenant = {_CONTEXT_TENANT} AND (care_unit = ANY ({_CONTEXT_UNITS}) OR EXISTS (
            SELECT 1 FROM device_bindings b
            WHERE b.patient_pseudonym = patient_identities.patient_pseudonym)))
        OR {_SHARED_IN_CONTEXT})"""),  # noqa: S608
    # Rows, not columns: its grants leave the registry the pseudonym column only, which
    # ON CONFLICT reads (and which makes PostgreSQL check the new row against SELECT policies).
    ("patient_identities", "registry_records",
     f"FOR ALL TO {REGISTRY} USING (true) WITH CHECK (true)"),
    # The clinic sees the grants to its own context (who shared what with it, until when).
    ("care_grants", "clinic_in_context", f"""FOR SELECT TO {CLINIC} USING (
        to_tenant = {_CONTEXT_TENANT} AND to_care_unit = ANY ({_CONTEXT_UNITS}))"""),
    ("care_grants", "registry_manages", f"FOR ALL TO {REGISTRY} USING (true) WITH CHECK (true)"),
]  # fmt: skip
_RLS_TABLES = tuple(dict.fromkeys(table for table, _, _ in _POLICIES))

# Maintenance on plain PostgreSQL creates and drops partitions and refreshes the rollups,
# which only the owner may do: the sink calls these functions, which run as their owner with
# a search_path it cannot shadow (pg_temp last).
_REFRESH_ROLLUPS_FN = """CREATE OR REPLACE FUNCTION veille_refresh_rollups() RETURNS integer
    LANGUAGE plpgsql AS $$
    DECLARE
        rollup text;
        populated boolean;
    BEGIN
        FOREACH rollup IN ARRAY ARRAY['readings_1m', 'readings_1h'] LOOP
            SELECT ispopulated INTO populated FROM pg_matviews
                WHERE matviewname = rollup AND schemaname = current_schema();
            -- CONCURRENTLY keeps the rollup readable, but needs a first plain refresh.
            IF populated THEN
                EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY %I', rollup);
            ELSE
                EXECUTE format('REFRESH MATERIALIZED VIEW %I', rollup);
            END IF;
        END LOOP;
        RETURN 2;
    END $$"""


def _definer(functions: tuple[str, ...]) -> str:
    alters = "\n".join(
        f"EXECUTE format('ALTER FUNCTION {f} SECURITY DEFINER SET search_path = %I, pg_temp', "
        "current_schema());"
        for f in functions
    )
    return f"DO $$ BEGIN\n{alters}\nEND $$"


def access_statements(*, maintenance_functions: bool) -> list[str]:
    """Roles' privileges, policies and the clinic's rollup views, after the schema exists.

    ``maintenance_functions``: plain PostgreSQL, where the sink runs the maintenance.
    """
    statements = [
        *_CONTEXT_FUNCTIONS,
        *_SHARING_FUNCTIONS,
        *_VISIBLE_VIEWS,
        f"REVOKE ALL ON {', '.join(_RELATIONS)} FROM {_ALL}",
        f"REVOKE ALL ON SEQUENCE {', '.join(_SEQUENCES)} FROM {_ALL}",
        f"REVOKE ALL ON {', '.join(_VISIBLE_VIEW_NAMES)} FROM PUBLIC",
        *_GRANTS,
        # The audit chain's trigger reads and moves audit_chain_head, which no writer may.
        _definer(AUDIT_FUNCTIONS),
        *_PATIENT_DEVICES_FUNCTIONS,
        _definer((_PATIENT_DEVICES_SIGNATURE,)),
        f"REVOKE ALL ON FUNCTION {_PATIENT_DEVICES_SIGNATURE} FROM PUBLIC, {_ALL}",
        f"GRANT EXECUTE ON FUNCTION {_PATIENT_DEVICES_SIGNATURE} TO {CLINIC}, {REGISTRY}",
    ]
    if maintenance_functions:
        statements += [
            _REFRESH_ROLLUPS_FN,
            _definer(_MAINTENANCE_FUNCTIONS),
            f"REVOKE ALL ON FUNCTION {', '.join(_MAINTENANCE_FUNCTIONS)} FROM PUBLIC, {_ALL}",
            f"GRANT EXECUTE ON FUNCTION {', '.join(_MAINTENANCE_FUNCTIONS)} TO {SINK}",
        ]
    for table in _RLS_TABLES:
        statements.append(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    for table, name, text in _POLICIES:
        statements.append(f"DROP POLICY IF EXISTS {name} ON {table}")
        statements.append(f"CREATE POLICY {name} ON {table} {text}")
    return statements


async def ensure_roles(conn: psycopg.AsyncConnection[TupleRow]) -> list[str]:
    """Create the component roles that do not exist yet (NOLOGIN: a group that login roles
    join), when the migrating role may; returns those created.

    Raises :class:`StoreError` before anything changed when some are missing and the
    migrating role may not create roles.
    """
    cur = await conn.execute(
        "SELECT r FROM unnest(%s::text[]) r WHERE NOT EXISTS "
        "(SELECT 1 FROM pg_roles WHERE rolname = r)",
        (list(ROLE_NAMES.values()),),
    )
    missing = [str(row[0]) for row in await cur.fetchall()]
    if not missing:
        return []
    cur = await conn.execute(
        "SELECT current_user, rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user"
    )
    user, may_create = await cur.fetchone() or ("?", False)
    if not may_create:
        creates = " ".join(f"CREATE ROLE {r} LOGIN PASSWORD '...';" for r in missing)
        raise StoreError(
            f"database roles {', '.join(missing)} do not exist and {user!r} may not create "
            f"them; as a superuser run {creates} then `veille migrate` again, and give each "
            "component its own VEILLE_*_DATABASE_URL (docs/SECURITY.md, Database roles)"
        )
    for role in missing:
        await conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
    return missing


async def enter_care_context(
    conn: psycopg.AsyncConnection[TupleRow], *, tenant: str, care_units: tuple[str, ...]
) -> None:
    """Scope the current transaction to ``tenant`` and ``care_units`` for row-level security.

    Transaction-local (``set_config(..., true)``): it ends with the transaction, so a pooled
    connection never carries one caller's context into the next request.
    """
    if conn.info.transaction_status is not TransactionStatus.INTRANS:
        raise StoreError(
            "the care context must be set inside a transaction (it would otherwise last as "
            "long as the connection); open one with `async with conn.transaction():` first"
        )
    await conn.execute(
        "SELECT set_config(%s, %s, true), set_config(%s, %s::text[]::text, true)",
        (TENANT_SETTING, tenant, CARE_UNITS_SETTING, list(care_units)),
    )
