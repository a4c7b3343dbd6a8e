"""Backup and restore against the real PostgreSQL of the local stack, through the real CLI.

Data comes from the real pipeline (MQTT -> gateway -> Kafka -> worker -> sink: readings, an
alert, a dead letter) and from the store's writer (a few days of history). Each restore goes
into a database created for the test on the same server by its superuser, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from store import (
    BackupManifest,
    BatchWriter,
    ReadingRow,
    TableDigest,
    manifest_path,
)
from store._schema import SCHEMA_VERSION
from tests.integration.conftest import RunningPipeline, RunningStack
from tests.support.devices import (
    TENANT,
    batch_payload,
    new_device,
    provision,
    reading,
    single_payload,
    spo2_series,
)
from tests.support.pipeline import count, publish_all, run_veille
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

ALL_READINGS = "SELECT * FROM readings ORDER BY device_id, metric, measured_at, seq"  # natural key

NewDatabase = Callable[[], Awaitable[str]]


def _without_password(dsn: str) -> tuple[str, str]:
    """(dsn without its password, the password): the CLI gets the password as PGPASSWORD."""
    params = conninfo_to_dict(dsn)
    password = str(params.pop("password"))
    return make_conninfo("", **params), password


def _admin_dsn(stack: RunningStack) -> str:
    state = json.loads((stack.state_dir / "stack.json").read_text())
    port = state["services"]["postgres"]["port"]
    return f"postgresql://postgres:{state['superuser_password']}@127.0.0.1:{port}/postgres"


@pytest.fixture
async def new_database(running_stack: RunningStack) -> AsyncIterator[NewDatabase]:
    """Creates empty databases owned by the app role; drops them all at the end."""
    admin = _admin_dsn(running_stack)
    created: list[str] = []

    async def create() -> str:
        name = f"veille_restore_{uuid.uuid4().hex[:8]}"
        async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
            await conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER veille").format(sql.Identifier(name))
            )
        created.append(name)
        params = conninfo_to_dict(running_stack.dsn)
        return make_conninfo("", **{**params, "dbname": name})

    try:
        yield create
    finally:
        async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
            for name in created:
                await conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


async def _history(dsn: str, days: int = 3) -> int:
    """Readings of the last ``days`` days written by the store's writer, some without signal."""
    device = new_device("bk")
    await provision(dsn, device)
    start = datetime.now(UTC) - timedelta(days=days)
    rows: list[ReadingRow] = [
        (start + timedelta(minutes=7 * i), TENANT, "icu", device.patient, device.device_id,
         "heart_rate", None if i % 37 == 0 else 60.0 + (i % 40) * 0.25, "/min", i,
         start + timedelta(minutes=7 * i, seconds=1))
        for i in range(days * 24 * 60 // 7)
    ]  # fmt: skip
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await BatchWriter(conn).write(rows)
    return len(rows)


async def _through_the_pipeline(pipeline: RunningPipeline) -> None:
    """Readings, a resolved SpO2 alert and a dead letter, the way production makes them."""
    dsn, broker = pipeline.stack.dsn, pipeline.stack.publisher
    device = new_device("bk")
    await provision(dsn, device)
    start = datetime.now(UTC) - timedelta(minutes=3)
    series = spo2_series(start, [97.0] * 10 + [84.0] * 5 + [97.0] * 10)
    messages = [
        (device.topic, batch_payload(device, series[i : i + 10]), 10) for i in range(0, 50, 10)
    ]
    messages.append((device.topic, single_payload(device, reading(9, "mood", 3, "1", start)), 1))
    publish_all(broker, messages)
    resolved = "SELECT count(*) FROM alerts WHERE patient_pseudonym = %s AND state = 'resolved'"
    await eventually(lambda: count(dsn, resolved, device.patient), lambda n: n == 1, what="alert")
    dead = "SELECT count(*) FROM dead_letters WHERE device_id = %s"
    await eventually(lambda: count(dsn, dead, device.device_id), lambda n: n == 1, what="dead")


async def _rows(dsn: str, query: str) -> list[tuple[object, ...]]:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        return await (await conn.execute(query)).fetchall()


def _veille(stack: RunningStack, *args: str) -> str:
    return run_veille(stack.env, *args, timeout=300)


def _restore(stack: RunningStack, target: str, backup: Path, *extra: str) -> str:
    """``veille backup import`` with the target's password in PGPASSWORD, as the docs advise."""
    into, password = _without_password(target)
    env = {**stack.env, "PGPASSWORD": password}
    return run_veille(env, "backup", "import", str(backup), "--into", into, *extra, timeout=300)


def _restore_fails(stack: RunningStack, target: str, backup: Path, *extra: str) -> str:
    into, password = _without_password(target)
    run = subprocess.run(
        [sys.executable, "-m", "veille", "backup", "import", str(backup), "--into", into, *extra],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, **stack.env, "PGPASSWORD": password},
    )  # fmt: skip
    assert run.returncode == 2, run.stdout + run.stderr
    return run.stderr


async def test_backup_restores_into_an_empty_database_with_identical_rows(
    pipeline: RunningPipeline, new_database: NewDatabase, tmp_path: Path
) -> None:
    stack = pipeline.stack
    history = await _history(stack.dsn)
    await _through_the_pipeline(pipeline)
    backup = tmp_path / "veille.dump"

    out = _veille(stack, "backup", "export", "--out", str(backup))

    assert f"wrote {backup}" in out
    for path in (backup, manifest_path(backup)):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    manifest = BackupManifest.from_json(manifest_path(backup).read_text())
    source_count = await count(stack.dsn, "SELECT count(*) FROM readings")
    assert manifest.tables["readings"].rows == source_count >= history + 50
    assert len(manifest.tables["readings"].buckets) >= 3  # one per UTC day of history
    assert manifest.tables["alerts"].rows >= 1 and manifest.tables["dead_letters"].rows >= 1
    assert (manifest.schema_version, manifest.flavour) == (SCHEMA_VERSION, "postgresql")

    target = await new_database()
    restored = _restore(stack, target, backup)

    assert restored.startswith(f"restore verified: {source_count} readings, ")
    assert "match the backup" in restored
    assert await _rows(target, ALL_READINGS) == await _rows(stack.dsn, ALL_READINGS)
    alerts = "SELECT * FROM alerts ORDER BY alert_id"
    assert await _rows(target, alerts) == await _rows(stack.dsn, alerts)
    schema = "SELECT version, flavour FROM veille_schema"
    assert await _rows(target, schema) == [(SCHEMA_VERSION, "postgresql")]


async def test_a_corrupted_backup_is_refused_and_nothing_is_restored(
    running_stack: RunningStack, new_database: NewDatabase, tmp_path: Path
) -> None:
    await _history(running_stack.dsn, days=1)
    backup = tmp_path / "veille.dump"
    _veille(running_stack, "backup", "export", "--out", str(backup))
    damaged = tmp_path / "damaged.dump"
    data = bytearray(backup.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, in the middle of the table data
    damaged.write_bytes(bytes(data))
    manifest_path(damaged).write_bytes(manifest_path(backup).read_bytes())
    target = await new_database()

    error = _restore_fails(running_stack, target, damaged)

    assert f"{damaged} is damaged" in error and "nothing was restored" in error
    tables = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
    assert await count(target, tables) == 0

    # A file altered where only the definitions are (a constraint renamed, the manifest
    # forged to the new SHA-256): the data digests alone would pass; the schema's do not.
    name = b"threshold_overrides_tenant_care_unit_patient_pseudonym_rule_key"
    altered = backup.read_bytes().replace(name, name.replace(b"_rule_", b"_sule_"))
    assert altered != backup.read_bytes()
    damaged.write_bytes(altered)
    forged = BackupManifest.from_json(manifest_path(backup).read_text())
    forged = replace(forged, sha256=hashlib.sha256(altered).hexdigest())
    manifest_path(damaged).write_text(forged.to_json())

    error = _restore_fails(running_stack, target, damaged)

    assert "does NOT match the backup" in error
    assert "schema: the constraints differ from the backup's" in error
    assert "readings" not in error  # the rows themselves are intact


async def test_a_restore_that_differs_from_its_manifest_fails_and_says_where(
    running_stack: RunningStack, new_database: NewDatabase, tmp_path: Path
) -> None:
    await _history(running_stack.dsn, days=1)
    backup = tmp_path / "veille.dump"
    _veille(running_stack, "backup", "export", "--out", str(backup))
    manifest = BackupManifest.from_json(manifest_path(backup).read_text())
    readings = manifest.tables["readings"]
    day, (rows, digest) = next(iter(readings.buckets.items()))
    wrong = TableDigest(readings.rows + 1, {**readings.buckets, day: (rows + 1, digest)})
    devices = manifest.tables["devices"]
    other = TableDigest(devices.rows, {"all": (devices.rows, "1")})
    tables = {**manifest.tables, "readings": wrong, "devices": other}
    manifest_path(backup).write_text(replace(manifest, tables=tables).to_json())
    target = await new_database()

    error = _restore_fails(running_stack, target, backup)

    assert "does NOT match the backup" in error
    assert f"readings {day}: {rows + 1} rows in the backup, {rows} restored" in error
    assert f"devices all: same {devices.rows} rows, different content" in error


async def test_restore_into_a_non_empty_database_needs_yes(
    running_stack: RunningStack, new_database: NewDatabase, tmp_path: Path
) -> None:
    await _history(running_stack.dsn, days=1)
    backup = tmp_path / "veille.dump"
    _veille(running_stack, "backup", "export", "--out", str(backup))
    target = await new_database()
    _restore(running_stack, target, backup)
    async with await psycopg.AsyncConnection.connect(target, autocommit=True) as conn:
        await conn.execute("DELETE FROM readings WHERE seq % 2 = 0")  # the target drifted
    before = await count(target, "SELECT count(*) FROM readings")

    error = _restore_fails(running_stack, target, backup)

    assert "the target database is not empty" in error and "--yes" in error
    assert await count(target, "SELECT count(*) FROM readings") == before  # untouched

    replaced = _restore(running_stack, target, backup, "--yes")

    assert "replaced the previous contents" in replaced and "restore verified" in replaced
    assert await _rows(target, ALL_READINGS) == await _rows(running_stack.dsn, ALL_READINGS)


async def test_backup_taken_while_the_sink_writes_matches_its_own_manifest(
    running_stack: RunningStack, new_database: NewDatabase, tmp_path: Path
) -> None:
    """The manifest is computed in pg_dump's snapshot: writes during the backup are in
    neither or in both, so the restore of a live database still verifies."""
    dsn = running_stack.dsn
    device = new_device("live")
    await provision(dsn, device)
    backup = tmp_path / "live.dump"
    start = datetime.now(UTC) - timedelta(hours=1)
    written = 0

    async def keep_writing(stop: asyncio.Event) -> None:
        nonlocal written
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            writer = BatchWriter(conn)
            while not stop.is_set():
                rows: list[ReadingRow] = [
                    (start + timedelta(milliseconds=written + i), TENANT, "icu", device.patient,
                     device.device_id, "pulse_rate", 70.0, "/min", written + i, start)
                    for i in range(200)
                ]  # fmt: skip
                await writer.write(rows)
                written += len(rows)

    stop = asyncio.Event()
    writes = asyncio.create_task(keep_writing(stop))
    try:
        await eventually(lambda: _value(written), lambda n: n > 0, what="writes started")
        before = written
        env = {**os.environ, **running_stack.env}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "veille", "backup", "export", "--out", str(backup), env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout=300)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, (out + err).decode()
        during = written
    finally:
        stop.set()
        await writes
    assert during > before  # the writer really ran while the backup was taken
    manifest = BackupManifest.from_json(manifest_path(backup).read_text())
    in_backup = manifest.tables["readings"].rows
    assert in_backup < await count(dsn, "SELECT count(*) FROM readings")  # more came after

    target = await new_database()
    restored = _restore(running_stack, target, backup)

    assert restored.startswith(f"restore verified: {in_backup} readings, ")


async def _value(n: int) -> int:
    return n
