"""Row and definition digests, read by the backup in the dump's snapshot and by the restore.

Per table: the row count and a content digest per bucket, per UTC day for the big
time-ordered tables, one bucket for the rest. A bucket's digest is the row count and the
sum of the first 64 bits of ``md5(row::text)``: order-independent, so PostgreSQL computes it
in one sequential scan with a hash aggregate of one row per day (constant memory, no sort),
and a mismatch names the day that differs. Definitions (columns, constraints, indexes,
views, functions, triggers) get one md5 per kind, since the data digests cannot see them.
"""

from __future__ import annotations

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from veille.errors import StoreError

from ._backup_manifest import TableDigest

__all__ = [
    "DAY_COLUMNS",
    "STABLE_OUTPUT",
    "USER_TABLES",
    "connect_stable",
    "schema_digests",
    "table_digests",
]

# Big, time-ordered tables are digested per UTC day so a mismatch says which day differs.
DAY_COLUMNS = {
    "readings": "measured_at",
    "alerts": "opened_at",
    "alert_events": "at",
    "dead_letters": "received_at",
}

# Row text must not depend on the session: fixed time zone, date, float and bytea output.
STABLE_OUTPUT = (
    "SET TimeZone = 'UTC'",
    "SET DateStyle = 'ISO, YMD'",
    "SET IntervalStyle = 'postgres'",
    "SET extra_float_digits = 1",
    "SET bytea_output = 'hex'",
)


async def connect_stable(conninfo: str) -> psycopg.AsyncConnection[TupleRow]:
    """An autocommit connection whose text output the digests depend on is fixed
    (:data:`STABLE_OUTPUT`); a refused connection is a :class:`StoreError`."""
    try:
        conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
    except psycopg.OperationalError as exc:
        raise StoreError(f"cannot connect to the database: {exc}".strip()) from exc
    for statement in STABLE_OUTPUT:
        await conn.execute(statement.encode())
    return conn


# Ordinary and partitioned tables of the application's schemas, not their partitions, not
# TimescaleDB's chunks or catalogs, not objects that belong to an extension.
USER_TABLES = """
    SELECT n.nspname, c.relname FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND n.nspname <> 'information_schema' AND n.nspname !~ '^(pg_|_?timescaledb)'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d
                      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                        AND d.deptype = 'e')
    ORDER BY 1, 2"""

# The definitions the data digests cannot see (a restored constraint with another name, a
# lost index), deparsed by the server, per kind; extension members and catalogs left out.
_SCHEMA_ITEMS = {
    "columns": """SELECT format('%s.%s.%s %s %s %s', n.nspname, c.relname, a.attname,
            format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid))
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm')
          AND n.nspname <> 'information_schema' AND n.nspname !~ '^(pg_|_?timescaledb)'""",
    "constraints": """SELECT format('%s.%s %s %s', n.nspname, c.relname, co.conname,
            pg_get_constraintdef(co.oid))
        FROM pg_constraint co JOIN pg_class c ON c.oid = co.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^(pg_|_?timescaledb)'""",
    "indexes": """SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
        JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^(pg_|_?timescaledb)'""",
    "views": """SELECT format('%s.%s %s', n.nspname, c.relname, pg_get_viewdef(c.oid))
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('v', 'm')
          AND n.nspname <> 'information_schema' AND n.nspname !~ '^(pg_|_?timescaledb)'""",
    "functions": """SELECT pg_get_functiondef(p.oid) FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE p.prokind IN ('f', 'p')
          AND n.nspname <> 'information_schema' AND n.nspname !~ '^(pg_|_?timescaledb)'
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                          AND d.objid = p.oid AND d.deptype = 'e')""",
    "triggers": """SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t
        JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT t.tgisinternal
          AND n.nspname <> 'information_schema' AND n.nspname !~ '^(pg_|_?timescaledb)'""",
}


async def table_digests(conn: psycopg.AsyncConnection[TupleRow]) -> dict[str, TableDigest]:
    """Row counts and content digests of every application table, in the current snapshot."""
    tables = await (await conn.execute(USER_TABLES.encode())).fetchall()
    digests: dict[str, TableDigest] = {}
    for schema, table in tables:
        name = table if schema == "public" else f"{schema}.{table}"
        column = DAY_COLUMNS.get(table) if schema == "public" else None
        bucket = (
            sql.SQL("to_char(t.{} AT TIME ZONE 'UTC', 'YYYY-MM-DD')").format(sql.Identifier(column))
            if column
            else sql.SQL("'all'")
        )
        query = sql.SQL(
            "SELECT {bucket}, count(*), "
            "coalesce(sum(('x' || left(md5(t::text), 16))::bit(64)::bigint), 0)::text "
            "FROM {table} AS t GROUP BY 1"
        ).format(bucket=bucket, table=sql.Identifier(schema, table))
        rows = await (await conn.execute(query)).fetchall()
        buckets = {str(b): (int(n), str(s)) for b, n, s in rows}
        digests[name] = TableDigest(
            sum(n for n, _ in buckets.values()), dict(sorted(buckets.items()))
        )
    return digests


async def schema_digests(conn: psycopg.AsyncConnection[TupleRow]) -> dict[str, str]:
    """One md5 per kind of definition (columns, constraints, indexes, views, functions,
    triggers) of the application's schemas."""
    digests = {}
    for kind, query in _SCHEMA_ITEMS.items():
        row = await (
            await conn.execute(
                f"SELECT md5(coalesce(string_agg(x, E'\\n' ORDER BY x), '')) "  # noqa: S608
                f"FROM ({query}) AS s(x)".encode()
            )
        ).fetchone()
        assert row is not None
        digests[kind] = str(row[0])
    return digests
