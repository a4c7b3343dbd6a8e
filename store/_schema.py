"""Schema and migrations: one module decides between TimescaleDB and plain PostgreSQL.

TimescaleDB: ``readings`` is a hypertable with compression and retention policies and
continuous aggregates ``readings_1m`` and ``readings_1h``. Plain PostgreSQL: ``readings`` is
range-partitioned by day with BRIN, the rollups are materialized views, and
:mod:`store._maintenance` does what the TimescaleDB jobs would do. Statements run one by one
in autocommit mode because continuous aggregates cannot be created inside a transaction; each
one is idempotent, so a migration interrupted half-way is simply run again. The roles'
privileges and row-level security (:mod:`store._access`) come last, in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import psycopg
from psycopg.rows import TupleRow

from ._access import access_statements, ensure_roles
from ._audit import AUDIT_SCHEMA

__all__ = [
    "Flavour",
    "SchemaInfo",
    "SchemaOptions",
    "migrate",
    "recorded_flavour",
    "recorded_schema",
    "statements_for",
]

# v7: the audit trail (store._audit); GHT sharing grants (care_grants); patients' display identity
# v8: readings lose their patient index; a patient's readings are found through the devices
# bound to them and the natural key (store._access.PATIENT_DEVICES_FUNCTION)
SCHEMA_VERSION = 8

# Run before the idempotent statements when a database is at an older version: what
# CREATE ... IF NOT EXISTS cannot change in place.
UPGRADES: dict[int, tuple[str, ...]] = {
    2: (
        # readings.value: NULL now means "no signal"; the rollup counts those apart.
        "ALTER TABLE readings ALTER COLUMN value DROP NOT NULL",
        "DROP MATERIALIZED VIEW IF EXISTS readings_1m CASCADE",
        "ALTER TABLE devices ADD COLUMN IF NOT EXISTS credential_hash text",
        "ALTER TABLE devices ADD COLUMN IF NOT EXISTS revoked_at timestamptz",
        "ALTER TABLE devices ALTER COLUMN care_unit DROP NOT NULL",
        "ALTER TABLE devices ALTER COLUMN patient_pseudonym DROP NOT NULL",
        "ALTER TABLE devices ALTER COLUMN bound_since DROP NOT NULL",
        "ALTER TABLE devices ALTER COLUMN bound_since DROP DEFAULT",
        "ALTER TABLE devices ALTER COLUMN device_type DROP DEFAULT",
    ),
    3: (
        # The alert lifecycle: acknowledgement, escalation, resolution by a clinician.
        "ALTER TABLE alerts ADD COLUMN IF NOT EXISTS acknowledged_at timestamptz",
        "ALTER TABLE alerts ADD COLUMN IF NOT EXISTS acknowledged_by text",
        "ALTER TABLE alerts ADD COLUMN IF NOT EXISTS resolved_by text",
        "ALTER TABLE alerts ADD COLUMN IF NOT EXISTS escalation_level integer NOT NULL DEFAULT 0",
        "ALTER TABLE alert_events ADD COLUMN IF NOT EXISTS actor text",
        "ALTER TABLE alert_events ADD COLUMN IF NOT EXISTS level integer NOT NULL DEFAULT 0",
        "ALTER TABLE alert_events ADD COLUMN IF NOT EXISTS priority text",
        "ALTER TABLE alert_events DROP CONSTRAINT IF EXISTS alert_events_pkey",
        "ALTER TABLE alert_events ADD PRIMARY KEY (alert_id, kind, at)",
    ),
    7: (
        # The care team's view of a patient: names, birth date, bed; a patient admitted by
        # pseudonym has no national identifier on record.
        "ALTER TABLE patient_identities ALTER COLUMN national_id DROP NOT NULL",
        "ALTER TABLE patient_identities ADD COLUMN IF NOT EXISTS family_name text",
        "ALTER TABLE patient_identities ADD COLUMN IF NOT EXISTS given_names text",
        "ALTER TABLE patient_identities ADD COLUMN IF NOT EXISTS birth_date date",
        "ALTER TABLE patient_identities ADD COLUMN IF NOT EXISTS care_unit text",
        "ALTER TABLE patient_identities ADD COLUMN IF NOT EXISTS bed text",
        "ALTER TABLE patient_identities ADD COLUMN IF NOT EXISTS admitted_at timestamptz",
        "ALTER TABLE patient_identities ADD COLUMN IF NOT EXISTS discharged_at timestamptz",
    ),
    8: (
        # Each row of readings paid a second B-tree insert, (patient, metric, time): 40 % of
        # the database's CPU per row, 39 % of its WAL (docs/BENCHMARKS.md, issue 14). The
        # clinic now reads a patient through their devices and the natural key.
        "DROP INDEX IF EXISTS readings_patient_time",
    ),
}


class Flavour(StrEnum):
    TIMESCALE = "timescaledb"
    POSTGRES = "postgresql"


@dataclass(frozen=True, slots=True, kw_only=True)
class SchemaOptions:
    retention_days: int = 365
    compress_after_days: int = 7
    partitions_back_days: int = 8  # readings older than VEILLE_MAX_AGE_S are dead-lettered
    partitions_ahead_days: int = 7


@dataclass(frozen=True, slots=True)
class SchemaInfo:
    flavour: Flavour
    version: int


_COMMON_HEAD = [
    """CREATE TABLE IF NOT EXISTS veille_schema (
        id boolean PRIMARY KEY DEFAULT true CHECK (id),
        version integer NOT NULL,
        flavour text NOT NULL,
        migrated_at timestamptz NOT NULL DEFAULT now())""",
    # The registry: one row per device, its current binding (NULL until bound).
    """CREATE TABLE IF NOT EXISTS devices (
        device_id text PRIMARY KEY,
        tenant text NOT NULL,
        device_type text NOT NULL,
        care_unit text,
        patient_pseudonym text,
        bound_since timestamptz,
        status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
        credential_hash text,
        revoked_at timestamptz,
        updated_at timestamptz NOT NULL DEFAULT now())""",
    # Every binding a device ever had: who it measured, from when to when (audit, replay).
    """CREATE TABLE IF NOT EXISTS device_bindings (
        device_id text NOT NULL REFERENCES devices (device_id),
        tenant text NOT NULL,
        care_unit text NOT NULL,
        patient_pseudonym text NOT NULL,
        bound_from timestamptz NOT NULL,
        bound_until timestamptz,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (device_id, bound_from))""",
    # A patient's devices: how the clinic finds their readings (store._access).
    """CREATE INDEX IF NOT EXISTS device_bindings_patient
        ON device_bindings (patient_pseudonym)""",
    # The only place a national health identifier, a name, a birth date or a bed is kept; no
    # other table, topic, log or webhook has them. The clinic reads the display columns under
    # row-level security (the patient's care team); nobody reads national_id (store._access).
    """CREATE TABLE IF NOT EXISTS patient_identities (
        patient_pseudonym text PRIMARY KEY,
        tenant text NOT NULL,
        national_id text,
        created_at timestamptz NOT NULL DEFAULT now(),
        family_name text,
        given_names text,
        birth_date date,
        care_unit text,
        bed text,
        admitted_at timestamptz,
        discharged_at timestamptz)""",
    "REVOKE ALL ON patient_identities FROM PUBLIC",
    # Validators cache the registry and reload it when told (LISTEN veille_registry).
    """CREATE OR REPLACE FUNCTION veille_registry_notify() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('veille_registry', COALESCE(NEW.device_id, OLD.device_id));
        RETURN NULL;
    END $$""",
    """CREATE OR REPLACE TRIGGER devices_notify AFTER INSERT OR UPDATE OR DELETE ON devices
        FOR EACH ROW EXECUTE FUNCTION veille_registry_notify()""",
]

_READINGS_COLUMNS = """(
        measured_at timestamptz NOT NULL,
        tenant text NOT NULL,
        care_unit text NOT NULL,
        patient_pseudonym text NOT NULL,
        device_id text NOT NULL,
        metric text NOT NULL,
        value double precision,
        unit text NOT NULL,
        seq bigint NOT NULL,
        received_at timestamptz NOT NULL,
        stored_at timestamptz NOT NULL DEFAULT now())"""

_READINGS_INDEXES = [
    # The natural key: redelivered readings hit it and are dropped by ON CONFLICT DO NOTHING.
    """CREATE UNIQUE INDEX IF NOT EXISTS readings_natural_key
        ON readings (device_id, metric, measured_at, seq)""",
]

# v5, the clinic: clinician accounts (a password hash, or none for identity-provider-only
# accounts), the care units each one may see, and login sessions stored by token hash only.
_CLINIC = [
    """CREATE TABLE IF NOT EXISTS clinicians (
        id bigserial PRIMARY KEY,
        tenant text NOT NULL,
        username text NOT NULL,
        display_name text NOT NULL,
        role text NOT NULL CHECK (role IN ('nurse', 'physician', 'admin')),
        password_hash text,
        disabled_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (tenant, username))""",
    """CREATE TABLE IF NOT EXISTS care_unit_members (
        clinician bigint NOT NULL REFERENCES clinicians (id),
        tenant text NOT NULL,
        care_unit text NOT NULL,
        PRIMARY KEY (clinician, care_unit))""",
    # The token itself is never stored: a stolen table opens no session.
    """CREATE TABLE IF NOT EXISTS clinician_sessions (
        token_hash bytea PRIMARY KEY,
        clinician bigint NOT NULL REFERENCES clinicians (id),
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        revoked_at timestamptz)""",
    """CREATE INDEX IF NOT EXISTS clinician_sessions_clinician
        ON clinician_sessions (clinician, expires_at)""",
]

# v5, notifications: who is told of alert events (a care unit, or NULL for every unit of the
# tenant) and every delivery attempt, once per (subscription, event).
_WEBHOOKS = [
    """CREATE TABLE IF NOT EXISTS webhook_subscriptions (
        id uuid PRIMARY KEY,
        tenant text NOT NULL,
        care_unit text,
        url text NOT NULL,
        secret text NOT NULL,
        enabled boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL DEFAULT now())""",
    """CREATE TABLE IF NOT EXISTS webhook_deliveries (
        id bigserial PRIMARY KEY,
        subscription uuid NOT NULL REFERENCES webhook_subscriptions (id),
        alert_id uuid NOT NULL,
        event_kind text NOT NULL,
        event_at timestamptz NOT NULL,
        attempt integer NOT NULL DEFAULT 0,
        status text NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'delivered', 'failed')),
        http_status integer,
        error text,
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        delivered_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (subscription, alert_id, event_kind, event_at))""",
    """CREATE INDEX IF NOT EXISTS webhook_deliveries_due
        ON webhook_deliveries (next_attempt_at) WHERE status = 'pending'""",
]

# v7, GHT sharing: one patient of an establishment shown to a care unit of another, by name
# of who granted it, why and until when. Never deleted: a grant is its own record; it ends at
# expires_at (the policies compare with now(): no job) or when revoked.
_SHARING = [
    """CREATE TABLE IF NOT EXISTS care_grants (
        grant_id uuid PRIMARY KEY,
        patient_pseudonym text NOT NULL,
        from_tenant text NOT NULL,
        to_tenant text NOT NULL,
        to_care_unit text NOT NULL,
        granted_by text NOT NULL CHECK (btrim(granted_by) <> ''),
        reason text NOT NULL CHECK (btrim(reason) <> ''),
        granted_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        revoked_at timestamptz,
        revoked_by text,
        CHECK (expires_at > granted_at),
        CHECK ((revoked_at IS NULL) = (revoked_by IS NULL)))""",
    # What every policy asks: the grants to a (tenant, care unit) not revoked, by expiry.
    """CREATE INDEX IF NOT EXISTS care_grants_to ON care_grants
        (to_tenant, to_care_unit, expires_at) WHERE revoked_at IS NULL""",
    """CREATE INDEX IF NOT EXISTS care_grants_patient ON care_grants (patient_pseudonym)""",
]

_COMMON_TAIL = [
    """CREATE TABLE IF NOT EXISTS alerts (
        alert_id uuid PRIMARY KEY,
        tenant text NOT NULL,
        care_unit text NOT NULL,
        patient_pseudonym text NOT NULL,
        rule text NOT NULL,
        metric text NOT NULL,
        priority text NOT NULL CHECK (priority IN ('high', 'medium', 'low')),
        state text NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
        opened_at timestamptz NOT NULL,
        acknowledged_at timestamptz,
        acknowledged_by text,
        resolved_at timestamptz,
        resolved_by text,
        escalation_level integer NOT NULL DEFAULT 0,
        opening_value double precision NOT NULL,
        message text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now())""",
    """CREATE INDEX IF NOT EXISTS alerts_board
        ON alerts (care_unit, state, priority, opened_at)""",
    """CREATE INDEX IF NOT EXISTS alerts_patient_rule ON alerts (patient_pseudonym, rule)""",
    # The history: every transition once (a replayed event has the same key).
    """CREATE TABLE IF NOT EXISTS alert_events (
        alert_id uuid NOT NULL REFERENCES alerts (alert_id),
        kind text NOT NULL,
        at timestamptz NOT NULL,
        priority text,
        level integer NOT NULL DEFAULT 0,
        actor text,
        value double precision,
        message text NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (alert_id, kind, at))""",
    """CREATE TABLE IF NOT EXISTS dead_letters (
        dead_letter_id text PRIMARY KEY,
        stage text NOT NULL,
        reason text NOT NULL,
        detail text NOT NULL,
        mqtt_topic text NOT NULL,
        device_id text,
        received_at timestamptz NOT NULL,
        raw text NOT NULL,
        stored_at timestamptz NOT NULL DEFAULT now())""",
    """CREATE INDEX IF NOT EXISTS dead_letters_reason ON dead_letters (reason, received_at)""",
    # Threshold overrides per care unit or per patient. Never updated in place: every change
    # is a new version with who and why, so the history answers "who changed what, when".
    """CREATE TABLE IF NOT EXISTS threshold_overrides (
        id bigserial PRIMARY KEY,
        tenant text NOT NULL,
        care_unit text,
        patient_pseudonym text,
        rule text NOT NULL,
        limit_value double precision,
        clear_at double precision,
        persistence integer CHECK (persistence >= 1),
        version integer NOT NULL,
        active boolean NOT NULL,
        changed_by text NOT NULL,
        changed_at timestamptz NOT NULL DEFAULT now(),
        reason text,
        CHECK ((care_unit IS NULL) <> (patient_pseudonym IS NULL)),
        CHECK (NOT active OR (limit_value IS NOT NULL AND clear_at IS NOT NULL
                              AND persistence IS NOT NULL)),
        UNIQUE NULLS NOT DISTINCT (tenant, care_unit, patient_pseudonym, rule, version))""",
    """CREATE OR REPLACE FUNCTION veille_thresholds_notify() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('veille_thresholds', NEW.rule);
        RETURN NULL;
    END $$""",
    """CREATE OR REPLACE TRIGGER threshold_overrides_notify AFTER INSERT ON threshold_overrides
        FOR EACH ROW EXECUTE FUNCTION veille_thresholds_notify()""",
    *_CLINIC,
    *_WEBHOOKS,
    *AUDIT_SCHEMA,
    *_SHARING,
]

# n counts values; no_signal counts readings where the sensor measured nothing (value NULL).
_ROLLUP_SELECT = """SELECT {bucket} AS bucket, tenant, care_unit, patient_pseudonym, metric,
            count(value) AS n, count(*) - count(value) AS no_signal,
            avg(value) AS mean, min(value) AS min, max(value) AS max
        FROM readings GROUP BY 1, tenant, care_unit, patient_pseudonym, metric"""


def _timescale(options: SchemaOptions) -> list[str]:
    return [
        "CREATE EXTENSION IF NOT EXISTS timescaledb",
        *_COMMON_HEAD,
        f"CREATE TABLE IF NOT EXISTS readings {_READINGS_COLUMNS}",
        """SELECT create_hypertable('readings', by_range('measured_at', INTERVAL '1 day'),
            if_not_exists => TRUE)""",
        *_READINGS_INDEXES,
        """ALTER TABLE readings SET (timescaledb.compress,
            timescaledb.compress_segmentby = 'patient_pseudonym, metric',
            timescaledb.compress_orderby = 'measured_at DESC')""",
        f"""SELECT add_compression_policy('readings',
            INTERVAL '{options.compress_after_days} days', if_not_exists => TRUE)""",
        f"""SELECT add_retention_policy('readings',
            INTERVAL '{options.retention_days} days', if_not_exists => TRUE)""",
        f"""CREATE MATERIALIZED VIEW IF NOT EXISTS readings_1m
            WITH (timescaledb.continuous) AS
            {_ROLLUP_SELECT.format(bucket="time_bucket(INTERVAL '1 minute', measured_at)")}
            WITH NO DATA""",
        """SELECT add_continuous_aggregate_policy('readings_1m',
            start_offset => INTERVAL '2 hours', end_offset => INTERVAL '1 minute',
            schedule_interval => INTERVAL '1 minute', if_not_exists => TRUE)""",
        f"""CREATE MATERIALIZED VIEW IF NOT EXISTS readings_1h
            WITH (timescaledb.continuous) AS
            {_ROLLUP_SELECT.format(bucket="time_bucket(INTERVAL '1 hour', measured_at)")}
            WITH NO DATA""",
        # Two days back: late readings (up to VEILLE_MAX_AGE_S) of the trend's last hours.
        """SELECT add_continuous_aggregate_policy('readings_1h',
            start_offset => INTERVAL '2 days', end_offset => INTERVAL '1 hour',
            schedule_interval => INTERVAL '30 minutes', if_not_exists => TRUE)""",
        *_COMMON_TAIL,
    ]


_ENSURE_PARTITIONS_FN = """CREATE OR REPLACE FUNCTION veille_ensure_partitions(
        days_back integer, days_ahead integer) RETURNS integer
    LANGUAGE plpgsql AS $$
    DECLARE
        day date;
        created integer := 0;
        name text;
    BEGIN
        FOR day IN SELECT generate_series(current_date - days_back, current_date + days_ahead,
                                          INTERVAL '1 day')::date LOOP
            name := format('readings_p%s', to_char(day, 'YYYYMMDD'));
            IF to_regclass(name) IS NULL THEN
                EXECUTE format('CREATE TABLE %I PARTITION OF readings FOR VALUES FROM (%L) TO (%L)',
                               name, day::timestamptz, (day + 1)::timestamptz);
                created := created + 1;
            END IF;
        END LOOP;
        RETURN created;
    END $$"""

_DROP_PARTITIONS_FN = """CREATE OR REPLACE FUNCTION veille_drop_partitions_before(
        cutoff date) RETURNS integer
    LANGUAGE plpgsql AS $$
    DECLARE
        part record;
        dropped integer := 0;
    BEGIN
        FOR part IN SELECT c.relname FROM pg_inherits i
                JOIN pg_class c ON c.oid = i.inhrelid
                JOIN pg_class p ON p.oid = i.inhparent
                WHERE p.relname = 'readings' AND c.relname ~ '^readings_p[0-9]{8}$'
                  AND to_date(substring(c.relname from 11), 'YYYYMMDD') < cutoff LOOP
            EXECUTE format('DROP TABLE %I', part.relname);
            dropped := dropped + 1;
        END LOOP;
        RETURN dropped;
    END $$"""


_DATE_BIN_MINUTE = "date_bin(INTERVAL '1 minute', measured_at, TIMESTAMPTZ '2000-01-01')"
_DATE_BIN_HOUR = "date_bin(INTERVAL '1 hour', measured_at, TIMESTAMPTZ '2000-01-01')"


def _postgres(options: SchemaOptions) -> list[str]:
    return [
        *_COMMON_HEAD,
        f"CREATE TABLE IF NOT EXISTS readings {_READINGS_COLUMNS} PARTITION BY RANGE (measured_at)",
        # Catches readings outside the daily partitions instead of failing the whole batch.
        "CREATE TABLE IF NOT EXISTS readings_default PARTITION OF readings DEFAULT",
        _ENSURE_PARTITIONS_FN,
        _DROP_PARTITIONS_FN,
        f"SELECT veille_ensure_partitions({options.partitions_back_days}, "
        f"{options.partitions_ahead_days})",
        *_READINGS_INDEXES,
        "CREATE INDEX IF NOT EXISTS readings_time_brin ON readings USING brin (measured_at)",
        f"""CREATE MATERIALIZED VIEW IF NOT EXISTS readings_1m AS
            {_ROLLUP_SELECT.format(bucket=_DATE_BIN_MINUTE)}
            WITH NO DATA""",
        # REFRESH ... CONCURRENTLY needs a unique index; it keeps the rollup readable meanwhile.
        """CREATE UNIQUE INDEX IF NOT EXISTS readings_1m_key
            ON readings_1m (patient_pseudonym, metric, bucket, tenant, care_unit)""",
        f"""CREATE MATERIALIZED VIEW IF NOT EXISTS readings_1h AS
            {_ROLLUP_SELECT.format(bucket=_DATE_BIN_HOUR)}
            WITH NO DATA""",
        """CREATE UNIQUE INDEX IF NOT EXISTS readings_1h_key
            ON readings_1h (patient_pseudonym, metric, bucket, tenant, care_unit)""",
        *_COMMON_TAIL,
    ]


def statements_for(flavour: Flavour, options: SchemaOptions) -> list[str]:
    return _timescale(options) if flavour is Flavour.TIMESCALE else _postgres(options)


async def detect_flavour(conn: psycopg.AsyncConnection[TupleRow]) -> Flavour:
    cur = await conn.execute(
        "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'"
    )
    row = await cur.fetchone()
    return Flavour.TIMESCALE if row and row[0] else Flavour.POSTGRES


async def recorded_schema(conn: psycopg.AsyncConnection[TupleRow]) -> SchemaInfo | None:
    """What ``veille_schema`` says the database was built as; None before the first migrate."""
    cur = await conn.execute("SELECT to_regclass('veille_schema') IS NOT NULL")
    row = await cur.fetchone()
    if not row or not row[0]:
        return None
    cur = await conn.execute("SELECT flavour, version FROM veille_schema")
    recorded = await cur.fetchone()
    return SchemaInfo(Flavour(recorded[0]), int(recorded[1])) if recorded else None


async def recorded_flavour(conn: psycopg.AsyncConnection[TupleRow]) -> Flavour | None:
    """The flavour a database was first built with wins: tables are never converted in place."""
    recorded = await recorded_schema(conn)
    return recorded.flavour if recorded else None


async def migrate(
    conninfo: str, *, flavour: Flavour | None = None, options: SchemaOptions | None = None
) -> SchemaInfo:
    """Bring the database to :data:`SCHEMA_VERSION`; safe to run again at every start."""
    options = options or SchemaOptions()
    async with await psycopg.AsyncConnection.connect(
        conninfo, autocommit=True, prepare_threshold=None
    ) as conn:
        recorded = await recorded_schema(conn)
        chosen = flavour or (recorded.flavour if recorded else None) or await detect_flavour(conn)
        await ensure_roles(conn)
        if recorded is not None:
            for version in range(recorded.version + 1, SCHEMA_VERSION + 1):
                for statement in UPGRADES.get(version, ()):
                    await conn.execute(statement.encode())
        for statement in statements_for(chosen, options):
            await conn.execute(statement.encode())
        async with conn.transaction():
            for statement in access_statements(maintenance_functions=chosen is Flavour.POSTGRES):
                await conn.execute(statement.encode())
        await conn.execute(
            """INSERT INTO veille_schema (version, flavour) VALUES (%s, %s)
               ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version,
                   flavour = EXCLUDED.flavour, migrated_at = now()""",
            (SCHEMA_VERSION, chosen.value),
        )
    return SchemaInfo(chosen, SCHEMA_VERSION)
