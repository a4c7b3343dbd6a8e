"""The natural keys of every stored reading, written to a file and checked against a restore.

A recovery drill must show that every reading the database held before the last archived
WAL segment is back after a restore from total loss. Digests cannot say that (the restored
database holds more: what was archived after the mark), a set of keys can: they are
copied out in one snapshot (:func:`save_reading_keys`), and after the restore
:func:`missing_reading_keys` loads them into a temporary table and counts those the
restored ``readings`` lacks. Both stream through ``COPY``: ten million keys cost about
half a gigabyte of file and no memory to speak of.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from ._backup_digests import connect_stable

__all__ = ["missing_reading_keys", "save_reading_keys"]

_KEYS = "SELECT device_id, metric, measured_at, seq FROM readings"
_CHUNK = 1 << 20


async def save_reading_keys(conninfo: str, path: Path) -> int:
    """Write the key of every reading visible in one snapshot to ``path``; returns how many.

    Every row written was committed before this call returned, so a WAL switch afterwards
    (``pgbackrest check``) puts them all in the archive."""
    async with await connect_stable(conninfo) as conn:
        await conn.set_autocommit(False)
        await conn.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
        rows = 0
        async with conn.transaction():
            with path.open("wb") as out:
                async with conn.cursor().copy(f"COPY ({_KEYS}) TO STDOUT".encode()) as copy:
                    async for chunk in copy:
                        out.write(chunk)
                        rows += bytes(chunk).count(b"\n")
    return rows


async def missing_reading_keys(conninfo: str, path: Path) -> int:
    """How many keys of ``path`` (:func:`save_reading_keys`) the database's ``readings``
    does not hold."""
    async with await connect_stable(conninfo) as conn:
        await conn.set_autocommit(False)
        async with conn.transaction():
            await conn.execute(
                b"""CREATE TEMPORARY TABLE saved_reading_keys (
                    device_id text, metric text, measured_at timestamptz, seq bigint)
                    ON COMMIT DROP"""
            )
            async with conn.cursor().copy(b"COPY saved_reading_keys FROM STDIN") as copy:
                with path.open("rb") as source:
                    while chunk := source.read(_CHUNK):
                        await copy.write(chunk)
            await conn.execute(b"ANALYZE saved_reading_keys")
            row = await (
                await conn.execute(
                    b"""SELECT count(*) FROM saved_reading_keys k WHERE NOT EXISTS (
                        SELECT 1 FROM readings r WHERE r.device_id = k.device_id
                        AND r.metric = k.metric AND r.measured_at = k.measured_at
                        AND r.seq = k.seq)"""
                )
            ).fetchone()
    return int(row[0]) if row else 0
