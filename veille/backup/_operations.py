"""``veille backup``, ``veille backup verify`` and ``veille backup list`` over pgBackRest."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from store import compare_schema, compare_tables, database_digests, mark_restore_point
from veille.errors import BackupError

from ._cluster import RecoveryTarget, restore_cluster, start_cluster
from ._pgbackrest import PgBackRest
from ._record import BackupRecord

__all__ = ["BackupSummary", "VerifyReport", "back_up", "list_backups", "verify_backup"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BackupSummary:
    """One backup set as ``pgbackrest info`` describes it."""

    label: str
    kind: str  # full | diff | incr
    started_at: datetime
    database_bytes: int
    repository_bytes: int  # compressed and encrypted, this set's own files
    wal_start: str
    wal_stop: str

    @classmethod
    def from_info(cls, entry: dict[str, Any]) -> BackupSummary:
        return cls(
            label=entry["label"], kind=entry["type"],
            started_at=datetime.fromtimestamp(entry["timestamp"]["start"], UTC),
            database_bytes=int(entry["info"]["size"]),
            repository_bytes=int(entry["info"]["repository"]["delta"]),
            wal_start=entry["archive"]["start"], wal_stop=entry["archive"]["stop"],
        )  # fmt: skip

    def line(self) -> str:
        return (
            f"{self.label} {self.kind:<4} {self.started_at:%Y-%m-%d %H:%M:%S}Z "
            f"database {self.database_bytes / 2**20:.1f} MiB, repository "
            f"{self.repository_bytes / 2**20:.1f} MiB, WAL {self.wal_start}..{self.wal_stop}"
        )


async def list_backups(repo: PgBackRest) -> list[BackupSummary]:
    stanza = await repo.info()
    return [BackupSummary.from_info(entry) for entry in stanza.get("backup", [])]


async def back_up(
    repo: PgBackRest, conninfo: str, records: Path, *, kind: str = "full"
) -> tuple[BackupSummary, BackupRecord]:
    """A pgBackRest backup, then a restore point with the digests of the database there
    (store's ``mark_restore_point``), archived before this returns (``pgbackrest check``
    switches the WAL segment and waits for it to reach the repository)."""
    await repo.info()  # a wrong key is refused before a backup starts
    await repo.run("backup", f"--type={kind}")
    summary = (await list_backups(repo))[-1]
    name = f"veille-{summary.label}"
    lsn, digests = await mark_restore_point(conninfo, name)
    await repo.run("check")
    record = BackupRecord(
        label=summary.label, restore_point=name, lsn=lsn,
        taken_at=datetime.now(UTC).isoformat(), digests=digests,
    )  # fmt: skip
    record.write(records)
    return summary, record


@dataclass(frozen=True, slots=True)
class VerifyReport:
    label: str
    target: str  # what the restore recovered to
    tables: int
    rows: int
    compared: bool  # digests recorded at backup time were compared

    def line(self) -> str:
        if not self.compared:
            return (
                f"backup {self.label} verified by pgBackRest and restored ({self.target}): "
                f"{self.tables} tables, {self.rows} rows; no record of its digests to compare"
            )
        return (
            f"backup {self.label} verified: repository checksums sound, restored to "
            f"{self.target}, {self.tables} tables and {self.rows} rows match the digests "
            "taken at backup time"
        )


async def verify_backup(
    repo: PgBackRest,
    conninfo: str,
    records: Path,
    *,
    label: str | None = None,
    scratch_parent: Path | None = None,
) -> VerifyReport:
    """``pgbackrest verify`` of the whole repository, then a restore of ``label`` (default:
    the latest) into a scratch data directory, started on a free port and compared with
    the digests recorded at backup time; the scratch cluster is stopped and deleted."""
    backups = await list_backups(repo)
    if not backups:
        raise BackupError("the repository holds no backup yet; run `veille backup` first")
    if label is not None and label not in {b.label for b in backups}:
        raise BackupError(f"no backup {label!r}; `veille backup list` shows the labels")
    chosen = label or backups[-1].label
    await repo.verify()
    record = BackupRecord.read(records, chosen)
    target = RecoveryTarget.point(record.restore_point) if record else RecoveryTarget.immediate()
    scratch = Path(tempfile.mkdtemp(prefix="veille-verify-", dir=scratch_parent))
    if repo.user:
        shutil.chown(scratch, repo.user, repo.user)
    try:
        data_dir = scratch / "data"
        await restore_cluster(repo, data_dir, label=chosen, target=target)
        restored = await start_cluster(repo, data_dir, conninfo)
        try:
            got = await database_digests(restored.conninfo(conninfo))
        finally:
            restored.stop()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    rows = sum(t.rows for t in got.tables.values())
    where = f"restore point {target.value}" if record else "the end of the backup"
    if record is None:
        if got.schema_version is None:
            raise BackupError(f"backup {chosen} restored but holds no Veille schema")
        return VerifyReport(chosen, where, len(got.tables), rows, compared=False)
    want = record.digests
    problems = []
    if (got.schema_version, got.flavour) != (want.schema_version, want.flavour):
        problems.append(
            f"schema: v{want.schema_version} ({want.flavour}) at backup time, restored "
            f"v{got.schema_version} ({got.flavour})"
        )
    problems += compare_schema(want.schema, got.schema)
    problems += compare_tables(want.tables, got.tables)
    if problems:
        raise BackupError(
            f"backup {chosen} restored to {where} but does NOT match what the database held "
            "then; do not rely on it:\n  " + "\n  ".join(problems)
        )
    return VerifyReport(chosen, where, len(got.tables), rows, compared=True)
