"""The audit trail: who read which patient, and who acted on which alert, when, from where.

``audit_events`` is append-only: a trigger refuses UPDATE and DELETE, another TRUNCATE, and
the component roles may only INSERT (and only the descriptive columns). PostgreSQL itself
numbers each row and chains it to the previous one by hash in a ``BEFORE INSERT`` trigger that
locks the one-row ``audit_chain_head`` first, so concurrent writers queue and the chain stays
linear (the lock is held until the writer's transaction ends: write the row last). The
canonical form and the verifier are in :mod:`store._audit_chain`. The table's owner can still
disable the triggers; what they then change is found by :func:`verify_audit_chain` unless
they also rewrite every later hash (docs/SECURITY.md, "Audit trail").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from ._audit_chain import GENESIS_HASH, AuditRow, ChainReport, ChainVerifier

__all__ = [
    "AUDIT_FUNCTIONS",
    "AUDIT_SCHEMA",
    "AUDIT_WRITABLE_COLUMNS",
    "AuditEntry",
    "list_audit",
    "record_audit",
    "verify_audit_chain",
]

Connection = psycopg.AsyncConnection[TupleRow]

# What a writer supplies; id, at, db_user and the hashes are the trigger's.
AUDIT_WRITABLE_COLUMNS = (
    "actor", "actor_role", "action", "patient_pseudonym", "tenant", "care_unit", "source",
    "detail",
)  # fmt: skip
# The functions that run as their owner (store._access makes them SECURITY DEFINER).
AUDIT_FUNCTIONS = ("veille_audit_chain()",)

# The canonical form's fields, in order (store._audit_chain); at in microseconds since 1970.
_CANONICAL_FIELDS = (
    "NEW.id::text", "(extract(epoch FROM NEW.at) * 1000000)::bigint::text", "NEW.db_user",
    "NEW.actor", "NEW.actor_role", "NEW.action", "NEW.patient_pseudonym", "NEW.tenant",
    "NEW.care_unit", "NEW.source", "NEW.detail::text",
)  # fmt: skip
_CANONICAL_SQL = " || ".join(
    ["'veille-audit-v1'"] + [f"veille_audit_field({expr})" for expr in _CANONICAL_FIELDS]
)

AUDIT_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS audit_chain_head (
        id boolean PRIMARY KEY DEFAULT true CHECK (id),
        last_id bigint NOT NULL,
        last_hash bytea NOT NULL)""",
    f"""INSERT INTO audit_chain_head (last_id, last_hash)
        VALUES (0, '\\x{GENESIS_HASH.hex()}'::bytea) ON CONFLICT (id) DO NOTHING""",  # noqa: S608
    """CREATE TABLE IF NOT EXISTS audit_events (
        id bigint PRIMARY KEY,
        at timestamptz NOT NULL,
        db_user text NOT NULL,
        actor text NOT NULL,
        actor_role text NOT NULL,
        action text NOT NULL,
        patient_pseudonym text,
        tenant text,
        care_unit text,
        source text NOT NULL,
        detail jsonb NOT NULL DEFAULT '{}',
        prev_hash bytea NOT NULL,
        row_hash bytea NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS audit_events_patient ON audit_events (patient_pseudonym, id)
        WHERE patient_pseudonym IS NOT NULL""",
    "CREATE INDEX IF NOT EXISTS audit_events_actor ON audit_events (actor, id)",
    # F(v) of the canonical form: '-' for NULL, else '<bytes>:<v>' (store._audit_chain).
    """CREATE OR REPLACE FUNCTION veille_audit_field(value text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $$ SELECT CASE WHEN value IS NULL THEN '-'
                          ELSE octet_length(value)::text || ':' || value END $$""",
    f"""CREATE OR REPLACE FUNCTION veille_audit_chain() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        head record;
    BEGIN
        SELECT last_id, last_hash INTO head FROM audit_chain_head WHERE id FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'audit_chain_head has no row: the audit chain cannot continue'
                USING HINT = 'restore the database from a backup; see docs/SECURITY.md';
        END IF;
        NEW.id := head.last_id + 1;
        NEW.at := clock_timestamp();
        NEW.db_user := session_user;
        NEW.detail := coalesce(NEW.detail, '{{}}'::jsonb);
        NEW.prev_hash := head.last_hash;
        NEW.row_hash := sha256(head.last_hash || convert_to({_CANONICAL_SQL}, 'UTF8'));
        UPDATE audit_chain_head SET last_id = NEW.id, last_hash = NEW.row_hash WHERE id;
        RETURN NEW;
    END $$""",  # noqa: S608 - this module's constants
    """CREATE OR REPLACE FUNCTION veille_audit_refuse() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
            USING ERRCODE = 'prohibited_sql_statement_attempted',
                  HINT = 'the audit trail is never changed; see docs/SECURITY.md, Audit trail';
    END $$""",
    """CREATE OR REPLACE TRIGGER audit_events_chain BEFORE INSERT ON audit_events
        FOR EACH ROW EXECUTE FUNCTION veille_audit_chain()""",
    """CREATE OR REPLACE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE
        ON audit_events FOR EACH ROW EXECUTE FUNCTION veille_audit_refuse()""",
    """CREATE OR REPLACE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
        FOR EACH STATEMENT EXECUTE FUNCTION veille_audit_refuse()""",
    """CREATE OR REPLACE TRIGGER audit_chain_head_kept BEFORE DELETE ON audit_chain_head
        FOR EACH ROW EXECUTE FUNCTION veille_audit_refuse()""",
    """CREATE OR REPLACE TRIGGER audit_chain_head_no_truncate BEFORE TRUNCATE
        ON audit_chain_head FOR EACH STATEMENT EXECUTE FUNCTION veille_audit_refuse()""",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """What a writer says about one access; the database adds id, time, its login and hashes.

    ``actor``: the clinician's username, ``cli:<os user>`` or a service name. ``source``: the
    client's address, or ``cli@<host>``. ``detail``: a few small values, never clinical data.
    """

    actor: str
    actor_role: str
    action: str
    source: str
    patient: str | None = None
    tenant: str | None = None
    care_unit: str | None = None
    detail: Mapping[str, object] = field(default_factory=dict)


async def record_audit(conn: Connection, entry: AuditEntry) -> None:
    """Append ``entry``; in the caller's transaction, whose end releases the chain's lock."""
    await conn.execute(
        """INSERT INTO audit_events (actor, actor_role, action, patient_pseudonym, tenant,
               care_unit, source, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
        (entry.actor, entry.actor_role, entry.action, entry.patient, entry.tenant,
         entry.care_unit, entry.source, Jsonb(dict(entry.detail))),
    )  # fmt: skip


_COLUMNS = """id, at, db_user, actor, actor_role, action, patient_pseudonym, tenant, care_unit,
    source, detail::text, prev_hash, row_hash"""


def _row(values: TupleRow) -> AuditRow:
    (ident, at, db_user, actor, actor_role, action, patient, tenant, unit, source, detail,
     prev_hash, row_hash) = values  # fmt: skip
    return AuditRow(
        id=int(ident), at=at, db_user=db_user, actor=actor, actor_role=actor_role,
        action=action, patient=patient, tenant=tenant, care_unit=unit, source=source,
        detail=detail, prev_hash=bytes(prev_hash), row_hash=bytes(row_hash),
    )  # fmt: skip


async def list_audit(
    conn: Connection,
    *,
    patient: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    limit: int = 200,
) -> list[AuditRow]:
    """The newest rows first. ``patient`` also finds reads of several patients at once that
    named them (``detail.patients``, e.g. the board's NEWS2)."""
    cur = await conn.execute(
        f"""SELECT {_COLUMNS} FROM audit_events
            WHERE (%(patient)s::text IS NULL OR patient_pseudonym = %(patient)s
                   OR detail -> 'patients' ? %(patient)s)
              AND (%(actor)s::text IS NULL OR actor = %(actor)s)
              AND (%(since)s::timestamptz IS NULL OR at >= %(since)s)
            ORDER BY id DESC LIMIT %(limit)s""",  # noqa: S608 - constant columns
        {"patient": patient, "actor": actor, "since": since, "limit": limit},
    )
    return [_row(values) for values in await cur.fetchall()]


VERIFY_BATCH = 5000  # rows per round trip of the server-side cursor


async def verify_audit_chain(
    conn: Connection, *, anchors: Mapping[int, bytes] | None = None
) -> ChainReport:
    """Recompute every hash in id order, in one snapshot with the chain head (rows written
    meanwhile are simply not looked at), and check ``anchors`` (row id -> hash recorded by an
    earlier verification). Needs SELECT on both tables: the owner's."""
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cur = await conn.execute("SELECT last_id, last_hash FROM audit_chain_head")
        head = await cur.fetchone()
        head_id, head_hash = (int(head[0]), bytes(head[1])) if head else (-1, b"")
        verifier = ChainVerifier(anchors)
        async with conn.cursor(name="veille_audit_verify") as rows:
            rows.itersize = VERIFY_BATCH
            await rows.execute(
                f"SELECT {_COLUMNS} FROM audit_events ORDER BY id"  # noqa: S608
            )
            async for values in rows:
                verifier.feed(_row(values))
                if verifier.broken:
                    break
        return verifier.finish(head_id, head_hash)
