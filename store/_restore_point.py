"""A named point in the WAL and the digests of the database at exactly that point.

A physical backup is not one SQL snapshot, so ``veille backup`` marks a point after it:
one transaction takes SHARE locks on every application table (writers finish, new ones
wait), creates the restore point in the WAL and exports its snapshot, which a second
connection imports; the locks go at once and the digests are read in the imported
snapshot. No write to those tables can commit between the snapshot and the WAL record, so a
cluster recovered to the point (``recovery_target_name``) holds exactly what the digests
describe. Writers wait for a few milliseconds, never for the digests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from veille.errors import StoreError

from ._backup_digests import (
    USER_TABLES,
    connect_stable,
    schema_digests,
    table_digests,
)
from ._backup_manifest import TableDigest
from ._schema import recorded_schema

__all__ = ["DatabaseDigests", "database_digests", "mark_restore_point"]

LOCK_TIMEOUT = "30s"  # a writer holding its transaction longer makes the backup say so


@dataclass(frozen=True, slots=True)
class DatabaseDigests:
    """Schema version and flavour, per-table and per-definition digests of one state."""

    schema_version: int | None
    flavour: str | None
    tables: Mapping[str, TableDigest]
    schema: Mapping[str, str]


async def _digests(conn: psycopg.AsyncConnection[TupleRow]) -> DatabaseDigests:
    recorded = await recorded_schema(conn)
    return DatabaseDigests(
        schema_version=recorded.version if recorded else None,
        flavour=recorded.flavour.value if recorded else None,
        tables=await table_digests(conn),
        schema=await schema_digests(conn),
    )


async def database_digests(conninfo: str) -> DatabaseDigests:
    """The digests of the database as it is now (a restored copy nobody writes to)."""
    async with await connect_stable(conninfo) as conn:
        await conn.set_autocommit(False)
        await conn.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
        async with conn.transaction():
            return await _digests(conn)


async def mark_restore_point(conninfo: str, name: str) -> tuple[str, DatabaseDigests]:
    """Create restore point ``name``; returns its LSN and the digests of the database there.

    Needs a superuser: ``pg_create_restore_point`` is theirs (a GRANT of it would travel
    in every ``pg_dump`` and fail at import), and they lock and read every table."""
    async with await connect_stable(conninfo) as locker, await connect_stable(conninfo) as reader:
        tables = await (await locker.execute(USER_TABLES.encode())).fetchall()
        await locker.set_autocommit(False)
        await locker.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
        await reader.set_autocommit(False)
        await reader.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
        await reader.set_read_only(True)
        async with locker.transaction():
            await locker.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'".encode())
            if tables:  # before any query: the snapshot is taken after the locks
                try:
                    await locker.execute(
                        sql.SQL("LOCK TABLE {} IN SHARE MODE").format(
                            sql.SQL(", ").join(sql.Identifier(s, t) for s, t in tables)
                        )
                    )
                except psycopg.errors.LockNotAvailable as exc:
                    raise StoreError(
                        f"a writer held its transaction open for more than {LOCK_TIMEOUT}; "
                        "the backup is in the repository but no restore point was marked: "
                        "run `veille backup` again"
                    ) from exc
            try:
                row = await (
                    await locker.execute(
                        "SELECT pg_create_restore_point(%s)::text, pg_export_snapshot()", (name,)
                    )
                ).fetchone()
            except psycopg.errors.InsufficientPrivilege as exc:
                raise StoreError(
                    "this role cannot create a restore point; set VEILLE_BACKUP_DATABASE_URL "
                    "to the application database as a superuser"
                ) from exc
            assert row is not None
            lsn, snapshot = str(row[0]), str(row[1])
            await reader.execute(
                sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot))
            )
        # The locks are released; the reader keeps the snapshot for the digests.
        try:
            return lsn, await _digests(reader)
        finally:
            await reader.rollback()
