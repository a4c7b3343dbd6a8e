"""Backups that prove themselves: ``pg_dump`` plus a manifest the restore is checked against.

The manifest is computed in the very snapshot ``pg_dump`` reads (``pg_export_snapshot`` and
``pg_dump --snapshot``), so writes arriving during the backup never make it disagree with the
dump. The restore checks the file's SHA-256 first, restores it, then recomputes every digest
and refuses a database that differs. What the digests are: ``_backup_digests``; the manifest
itself: ``_backup_manifest``; the client programs and their passfile: ``_pg_tools``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow

from veille.errors import StoreError

from ._backup_digests import (
    USER_TABLES,
    connect_stable,
    schema_digests,
    table_digests,
)
from ._backup_manifest import (
    BackupManifest,
    RestoreReport,
    compare_schema,
    compare_tables,
    manifest_path,
    read_verified_manifest,
)
from ._pg_tools import dump_to, find_pg_tool, libpq_target, run_pg_restore, tool_major
from ._schema import Flavour, recorded_schema

__all__ = ["back_up", "restore"]


async def _server_facts(conn: psycopg.AsyncConnection[TupleRow]) -> tuple[str, int, str | None]:
    row = await (
        await conn.execute(
            "SELECT current_setting('server_version'), "
            "current_setting('server_version_num')::int / 10000, "
            "(SELECT extversion FROM pg_extension WHERE extname = 'timescaledb')"
        )
    ).fetchone()
    assert row is not None
    return str(row[0]), int(row[1]), row[2]


# -- backup -------------------------------------------------------------------------------
def _replace_durably(tmp: Path, final: Path) -> None:
    tmp.replace(final)
    dir_fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    finally:
        os.close(dir_fd)


def _write_manifest(manifest: BackupManifest, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, manifest.to_json().encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    _replace_durably(tmp, path)


async def back_up(conninfo: str, out: Path) -> BackupManifest:
    """Dump the database to ``out`` and write ``out.manifest.json``; both 0600, atomic."""
    started = datetime.now(UTC)
    out = out.resolve()
    if not out.parent.is_dir():
        raise StoreError(f"directory {out.parent} does not exist; create it (mode 0700) first")
    tool = await find_pg_tool("pg_dump")
    async with await connect_stable(conninfo) as conn:
        server_version, server_major, timescale = await _server_facts(conn)
        if server_major > tool.major:
            raise StoreError(
                f"the server runs PostgreSQL {server_major} but {tool.path} is version "
                f"{tool.major}, which cannot dump it; install postgresql-client-{server_major}"
            )
        recorded = await recorded_schema(conn)
        if recorded is None:
            raise StoreError("this database has no Veille schema; run `veille migrate` first")
        flavour, version = recorded.flavour, recorded.version
        tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
        # One REPEATABLE READ transaction: its snapshot is exported to pg_dump and the
        # digests read the same one, so they describe exactly what the dump holds.
        await conn.set_autocommit(False)
        await conn.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
        await conn.set_read_only(True)
        try:
            async with conn.transaction():
                row = await (await conn.execute("SELECT pg_export_snapshot()")).fetchone()
                assert row is not None
                with libpq_target(conninfo) as (target, env):
                    dump = asyncio.create_task(dump_to(tool, target, env, str(row[0]), tmp))
                    try:
                        tables = await table_digests(conn)
                        schema = await schema_digests(conn)
                    except BaseException:
                        dump.cancel()  # pg_dump is killed in dump_to's finally
                        with contextlib.suppress(asyncio.CancelledError, StoreError):
                            await dump
                        raise
                    size, sha256 = await dump
            await asyncio.to_thread(_replace_durably, tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    manifest = BackupManifest(
        file=out.name, size_bytes=size, sha256=sha256,
        database=str(conninfo_to_dict(conninfo).get("dbname", "")),
        schema_version=version, flavour=flavour.value, server_version=server_version,
        pg_dump_version=tool.version, timescaledb_version=timescale,
        started_at=started.isoformat(), finished_at=datetime.now(UTC).isoformat(),
        tables=tables, schema_digests=schema,
    )  # fmt: skip
    await asyncio.to_thread(_write_manifest, manifest, manifest_path(out))
    return manifest


# -- restore ------------------------------------------------------------------------------
async def _existing_relations(conn: psycopg.AsyncConnection[TupleRow]) -> list[str]:
    rows = await (await conn.execute(USER_TABLES.encode())).fetchall()
    return [f"{s}.{t}" for s, t in rows]


@contextlib.asynccontextmanager
async def _timescale_restore_mode(
    conn: psycopg.AsyncConnection[TupleRow], manifest: BackupManifest
) -> AsyncIterator[None]:
    """TimescaleDB's documented procedure: extension first, then ``timescaledb_pre_restore()``
    before ``pg_restore`` and ``timescaledb_post_restore()`` after, whatever happened."""
    if manifest.flavour != Flavour.TIMESCALE.value:
        yield
        return
    available = await (
        await conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    ).fetchone()
    if available is None:
        raise StoreError(
            f"the backup is a TimescaleDB database (extension {manifest.timescaledb_version}) "
            "but the target server has no TimescaleDB; install that version there first"
        )
    await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    await conn.execute("SELECT timescaledb_pre_restore()")
    try:
        yield
    finally:
        await conn.execute("SELECT timescaledb_post_restore()")


async def restore(backup: Path, conninfo: str, *, overwrite: bool = False) -> RestoreReport:
    """Check the file, restore it into ``conninfo``'s database, then prove the result equal."""
    manifest = await read_verified_manifest(backup)
    tool = await find_pg_tool("pg_restore")
    written_by = tool_major(manifest.pg_dump_version)
    if written_by > tool.major:
        raise StoreError(
            f"the backup was written by {manifest.pg_dump_version}; {tool.path} is "
            f"version {tool.major} and cannot read it: install postgresql-client-{written_by}"
        )
    async with await connect_stable(conninfo) as conn:
        existing = await _existing_relations(conn)
        if existing and not overwrite:
            shown = ", ".join(existing[:5]) + (" ..." if len(existing) > 5 else "")
            raise StoreError(
                f"the target database is not empty ({len(existing)} tables: {shown}); "
                "restore into an empty database, or pass --yes to replace its contents"
            )
        if existing and manifest.flavour == Flavour.TIMESCALE.value:
            raise StoreError(
                "a TimescaleDB restore needs an empty database (pg_restore --clean would drop "
                "the extension under the restore); drop and re-create the database first"
            )
        async with _timescale_restore_mode(conn, manifest):
            await run_pg_restore(
                tool, backup, conninfo, clean=bool(existing),
                single_transaction=manifest.flavour == Flavour.POSTGRES.value,
            )  # fmt: skip
        schema_checked = await _check_restored(conn, manifest)
    return RestoreReport(manifest, cleaned=bool(existing), schema_checked=schema_checked)


async def _check_restored(
    conn: psycopg.AsyncConnection[TupleRow], manifest: BackupManifest
) -> bool:
    """Raise with every difference; returns whether the definitions were compared too (only
    on the backup's PostgreSQL major version: another one deparses them differently)."""
    recorded = await recorded_schema(conn)
    version, flavour = (recorded.version, recorded.flavour) if recorded else (None, None)
    problems = []
    if version != manifest.schema_version or flavour is None or flavour.value != manifest.flavour:
        problems.append(
            f"schema: backup v{manifest.schema_version} ({manifest.flavour}), restored "
            f"v{version} ({flavour.value if flavour else 'none'})"
        )
    _, server_major, _ = await _server_facts(conn)
    same_major = manifest.server_version.split(".")[0] == str(server_major)
    if same_major:
        problems += compare_schema(manifest.schema_digests, await schema_digests(conn))
    problems += compare_tables(manifest.tables, await table_digests(conn))
    if problems:
        raise StoreError(
            "restore finished but does NOT match the backup; do not use this database:\n  "
            + "\n  ".join(problems)
        )
    return same_major
