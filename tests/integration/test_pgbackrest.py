"""pgBackRest backups of the local stack's real PostgreSQL, with its real WAL archiving.

Each scratch cluster lives in a directory of its own (reachable by the `postgres` user when
we are root) and is stopped by PID in the fixture, also when the test fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from store import BatchWriter, ReadingRow
from tests.integration.conftest import RunningStack
from tests.support.devices import TENANT, new_device, provision
from tests.support.waiting import eventually
from veille.backup import PgBackRest, RestoredCluster, restore_cluster, start_cluster
from veille.settings import Settings

pytestmark = pytest.mark.slow


def _settings(stack: RunningStack) -> Settings:
    return Settings(
        database_url=stack.dsn,
        backup_config=stack.env["VEILLE_BACKUP_CONFIG"],
        backup_cipher_pass=stack.env["VEILLE_BACKUP_CIPHER_PASS"],
        backup_records_dir=stack.state_dir / "backups",
    )


def _admin_dsn(stack: RunningStack) -> str:
    state = json.loads((stack.state_dir / "stack.json").read_text())
    port = state["services"]["postgres"]["port"]
    return f"postgresql://postgres:{state['superuser_password']}@127.0.0.1:{port}/postgres"


def _veille(stack: RunningStack, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "veille", *args], capture_output=True, text=True, timeout=600,
        env={**os.environ, **stack.env, "VEILLE_STATE_DIR": str(stack.state_dir), **env},
        check=False,
    )  # fmt: skip


async def _write_readings(dsn: str, n: int) -> str:
    """``n`` readings of a new device; returns its id."""
    device = new_device("pgbr")
    await provision(dsn, device)
    start = datetime.now(UTC) - timedelta(hours=1)
    rows: list[ReadingRow] = [
        (start + timedelta(seconds=i), TENANT, "icu", device.patient, device.device_id,
         "heart_rate", 60.0 + i % 30, "/min", i, start + timedelta(seconds=i))
        for i in range(n)
    ]  # fmt: skip
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await BatchWriter(conn).write(rows)
    return device.device_id


async def _count(dsn: str, device_id: str) -> int:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        row = await (
            await conn.execute("SELECT count(*) FROM readings WHERE device_id = %s", (device_id,))
        ).fetchone()
    assert row is not None
    return int(row[0])


def _latest_set(repo_dir: Path) -> Path:
    sets = sorted(p for p in (repo_dir / "backup" / "veille").iterdir() if p.name[:8].isdigit())
    return sets[-1]


@pytest.fixture
def scratch(running_stack: RunningStack) -> Iterator[tuple[Path, list[RestoredCluster]]]:
    """A directory the cluster's user can reach, and the clusters started in it; every one
    is stopped by PID and the directory deleted, whatever the test did."""
    directory = Path(tempfile.mkdtemp(prefix="veille-test-restore-", dir="/var/tmp"))  # noqa: S108
    user = PgBackRest.from_settings(_settings(running_stack)).user
    if user:
        shutil.chown(directory, user, user)
    started: list[RestoredCluster] = []
    try:
        yield directory, started
    finally:
        for cluster in started:
            cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
async def backed_up(running_stack: RunningStack) -> AsyncIterator[str]:
    """Readings written, then a full backup through the CLI; yields the device's id."""
    device_id = await _write_readings(running_stack.dsn, 500)
    run = _veille(running_stack, "backup", "--type=full")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "restore point veille-" in run.stdout
    yield device_id


async def test_backup_is_encrypted_and_verify_restores_it_and_matches(
    running_stack: RunningStack, backed_up: str
) -> None:
    config = Path(running_stack.env["VEILLE_BACKUP_CONFIG"])
    key = running_stack.env["VEILLE_BACKUP_CIPHER_PASS"]
    assert key not in config.read_text() and config.stat().st_mode & 0o077 == 0
    repo_dir = config.parent / "repo"
    backup_set = _latest_set(repo_dir)
    files = [p for p in backup_set.rglob("*") if p.is_file()]
    assert files and all(p.read_bytes()[:8] == b"Salted__" for p in files)  # encrypted at rest

    listed = _veille(running_stack, "backup", "list")
    assert listed.returncode == 0 and backup_set.name in listed.stdout, listed.stderr

    run = _veille(running_stack, "backup", "verify")
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"backup {backup_set.name} verified" in run.stdout
    assert "match the digests taken at backup time" in run.stdout
    assert not list(Path(tempfile.gettempdir()).glob("veille-verify-*"))  # scratch deleted


async def test_a_wrong_key_is_refused_with_a_clear_error(
    running_stack: RunningStack, backed_up: str
) -> None:
    for args in (("backup", "verify"), ("backup", "list"), ("backup",)):
        run = _veille(running_stack, *args, VEILLE_BACKUP_CIPHER_PASS="not-the-key")
        assert run.returncode == 2, run.stdout + run.stderr
        assert "cannot be decrypted with this key" in run.stderr
        assert "Traceback" not in run.stderr


async def test_one_flipped_byte_in_the_repository_is_detected(
    running_stack: RunningStack, backed_up: str, scratch: tuple[Path, list[RestoredCluster]]
) -> None:
    repo_dir = Path(running_stack.env["VEILLE_BACKUP_CONFIG"]).parent / "repo"
    backup_set = _latest_set(repo_dir)
    victim = max((p for p in (backup_set / "pg_data").rglob("*") if p.is_file()), key=_size)
    original = victim.read_bytes()
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0x01
    try:
        victim.write_bytes(bytes(damaged))
        run = _veille(running_stack, "backup", "verify")
        assert run.returncode == 2, run.stdout + run.stderr
        assert "damaged or was tampered with" in run.stderr
        assert "checksum invalid: 1" in run.stderr
        assert "Traceback" not in run.stderr
        # A restore of the damaged set fails too, and says so.
        directory, _ = scratch
        restore = _veille(
            running_stack, "restore", "--to", str(directory / "data"), "--set", backup_set.name,
            PGBACKREST_JOB_RETRY="0",
        )  # fmt: skip
        assert restore.returncode == 2, restore.stdout + restore.stderr
        assert "pgbackrest restore failed" in restore.stderr
    finally:
        victim.write_bytes(original)
    assert _veille(running_stack, "backup", "verify").returncode == 0  # sound again


def _size(path: Path) -> int:
    return path.stat().st_size


async def test_restore_to_latest_brings_back_rows_committed_after_the_backup(
    running_stack: RunningStack, backed_up: str, scratch: tuple[Path, list[RestoredCluster]]
) -> None:
    settings = _settings(running_stack)
    repo = PgBackRest.from_settings(settings)
    later = await _write_readings(running_stack.dsn, 321)  # after the full backup
    async with await psycopg.AsyncConnection.connect(
        _admin_dsn(running_stack), autocommit=True
    ) as conn:
        row = await (await conn.execute("SELECT pg_walfile_name(pg_switch_wal())")).fetchone()
        assert row is not None
        segment = str(row[0])

        async def archived() -> str:
            got = await (
                await conn.execute("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
            ).fetchone()
            return str(got[0]) if got else ""

        await eventually(archived, lambda last: last >= segment, what="WAL archived")

    directory, started = scratch
    data_dir = directory / "data"
    await restore_cluster(repo, data_dir)  # latest backup, to the latest archived WAL
    restored = await start_cluster(repo, data_dir, running_stack.dsn)
    started.append(restored)
    restored_dsn = restored.conninfo(running_stack.dsn)
    assert await _count(restored_dsn, later) == 321
    assert await _count(restored_dsn, backed_up) == 500
    # It is a new cluster, not the source: a write there does not reach the source.
    async with await psycopg.AsyncConnection.connect(restored_dsn, autocommit=True) as conn:
        await conn.execute("DELETE FROM readings WHERE device_id = %s", (later,))
    assert await _count(running_stack.dsn, later) == 321
