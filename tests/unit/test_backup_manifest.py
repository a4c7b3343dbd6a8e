"""The backup manifest: comparison in words, JSON round trip, file checks, credentials."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from store import (
    BackupManifest,
    TableDigest,
    compare_schema,
    compare_tables,
    manifest_path,
    read_verified_manifest,
)
from store._pg_tools import libpq_target, tool_major
from veille.errors import StoreError

DAY = "2026-11-20"


def _digests() -> dict[str, TableDigest]:
    return {
        "readings": TableDigest(5, {DAY: (3, "123"), "2026-11-21": (2, "-45")}),
        "alerts": TableDigest(1, {"2026-11-21": (1, "9")}),
        "devices": TableDigest(2, {"all": (2, "77")}),
    }


def _manifest(**changes: object) -> BackupManifest:
    fields: dict[str, object] = dict(
        file="b.dump", size_bytes=4, sha256="0" * 64, database="veille", schema_version=5,
        flavour="postgresql", server_version="15.18",
        pg_dump_version="pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)",
        timescaledb_version=None, started_at="2026-11-22T10:00:00+00:00",
        finished_at="2026-11-22T10:00:01+00:00", tables=_digests(),
        schema_digests={"columns": "a1", "constraints": "b2", "indexes": "c3"},
    )  # fmt: skip
    fields.update(changes)
    return BackupManifest(**fields)  # type: ignore[arg-type]


def test_identical_digests_have_no_differences() -> None:
    assert compare_tables(_digests(), _digests()) == []


def test_a_missing_row_names_its_table_and_day() -> None:
    restored = _digests()
    restored["readings"] = TableDigest(4, {DAY: (2, "100"), "2026-11-21": (2, "-45")})
    assert compare_tables(_digests(), restored) == [
        "readings: 5 rows in the backup, 4 restored",
        f"readings {DAY}: 3 rows in the backup, 2 restored",
    ]


def test_a_changed_value_with_the_same_count_is_a_content_difference() -> None:
    restored = _digests()
    restored["devices"] = TableDigest(2, {"all": (2, "78")})
    assert compare_tables(_digests(), restored) == ["devices all: same 2 rows, different content"]


def test_missing_and_extra_tables_and_days_are_reported() -> None:
    restored = _digests()
    del restored["alerts"]
    restored["leftover"] = TableDigest(0, {})
    restored["readings"] = TableDigest(
        6, {**_digests()["readings"].buckets, "2026-11-23": (1, "5")}
    )
    assert compare_tables(_digests(), restored) == [
        "table alerts is in the backup but missing from the database",
        "table leftover is in the database but not in the backup",
        "readings: 5 rows in the backup, 6 restored",
        "readings 2026-11-23: 0 rows in the backup, 1 restored",
    ]


def test_schema_differences_name_the_kind_of_definition() -> None:
    backup = {"columns": "a1", "constraints": "b2", "indexes": "c3"}
    restored = {"columns": "a1", "constraints": "XX", "triggers": "d4"}
    assert compare_schema(backup, backup) == []
    assert compare_schema(backup, restored) == [
        "schema: the constraints differ from the backup's",
        "schema: the indexes differ from the backup's",
        "schema: the triggers differ from the backup's",
    ]


def test_manifest_json_round_trip_keeps_every_field() -> None:
    manifest = _manifest()
    assert BackupManifest.from_json(manifest.to_json()) == manifest


def test_manifest_of_another_format_is_refused() -> None:
    text = _manifest().to_json().replace('"format": 1', '"format": 99')
    with pytest.raises(StoreError, match="format 99"):
        BackupManifest.from_json(text)


def _write_backup(tmp_path: Path, content: bytes, **changes: object) -> Path:
    backup = tmp_path / "b.dump"
    backup.write_bytes(content)
    digest = hashlib.sha256(content).hexdigest()
    manifest = _manifest(sha256=digest, size_bytes=len(content), **changes)
    manifest_path(backup).write_text(manifest.to_json())
    return backup


async def test_an_intact_file_passes_the_check(tmp_path: Path) -> None:
    backup = _write_backup(tmp_path, b"PGDMP intact")
    assert (await read_verified_manifest(backup)).size_bytes == len(b"PGDMP intact")


async def test_a_changed_byte_is_refused_before_anything_is_restored(tmp_path: Path) -> None:
    backup = _write_backup(tmp_path, b"PGDMP intact")
    backup.write_bytes(b"PGDMP intacT")
    with pytest.raises(StoreError, match="is damaged: its SHA-256 is"):
        await read_verified_manifest(backup)


async def test_a_backup_without_its_manifest_is_refused(tmp_path: Path) -> None:
    backup = _write_backup(tmp_path, b"PGDMP")
    manifest_path(backup).unlink()
    with pytest.raises(StoreError, match="manifest cannot be verified"):
        await read_verified_manifest(backup)


async def test_a_backup_of_a_newer_schema_is_refused(tmp_path: Path) -> None:
    backup = _write_backup(tmp_path, b"PGDMP", schema_version=999)
    with pytest.raises(StoreError, match="schema v999"):
        await read_verified_manifest(backup)


def test_the_password_goes_to_a_0600_passfile_never_the_conninfo() -> None:
    dsn = "postgresql://veille:s3cr:t%5C@127.0.0.1:5432/veille"
    with libpq_target(dsn) as (target, env):
        passfile = Path(env["PGPASSFILE"])
        assert "s3cr" not in target and "password" not in target
        assert "dbname=veille" in target and "user=veille" in target
        assert stat.S_IMODE(passfile.stat().st_mode) == 0o600
        assert passfile.read_text() == "*:*:*:*:s3cr\\:t\\\\\n"
        assert "PGPASSWORD" not in env
    assert not passfile.exists()


def test_without_a_password_the_users_own_libpq_settings_apply(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PGPASSWORD", "from-env")
    with libpq_target("host=127.0.0.1 dbname=veille user=veille") as (target, env):
        assert env["PGPASSWORD"] == "from-env" and "PGPASSFILE" not in env
        assert "password" not in target
    assert os.environ["PGPASSWORD"] == "from-env"


@pytest.mark.parametrize(
    ("text", "major"),
    [
        ("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)", 15),
        ("pg_restore (PostgreSQL) 17.2", 17),
        ("pg_dump (PostgreSQL) 18devel", 18),
    ],
)
def test_client_major_version_is_read_from_its_banner(text: str, major: int) -> None:
    assert tool_major(text) == major


def test_restore_summary_names_the_clinical_tables_first() -> None:
    from store import RestoreReport

    line = RestoreReport(_manifest(), cleaned=False, schema_checked=True).line()
    assert line == (
        "restore verified: 5 readings, 1 alerts and 1 other tables (8 rows) match the backup"
    )
    other_major = RestoreReport(_manifest(), cleaned=False, schema_checked=False).line()
    assert other_major.endswith("; definitions not compared (other major)")


async def test_missing_client_programs_name_the_package_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from store import _pg_tools
    from veille.errors import MissingDependencyError

    monkeypatch.setattr(_pg_tools.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(_pg_tools.shutil, "which", lambda name: None)
    with pytest.raises(MissingDependencyError, match="apt-get install -y postgresql-client"):
        await _pg_tools.find_pg_tool("pg_dump")
