"""The manifest written next to a backup, and the checks that need nothing but the files.

``FILE.manifest.json`` records the dump's size and SHA-256, the schema it holds and, per
table, the digests the restore is compared with. Kept apart from the SQL and the client
programs so a manifest can be read, verified and compared without a database.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from veille.errors import StoreError

from ._schema import SCHEMA_VERSION

__all__ = [
    "CHUNK_BYTES",
    "MANIFEST_FORMAT",
    "SUMMARY_TABLES",
    "BackupManifest",
    "RestoreReport",
    "TableDigest",
    "compare_schema",
    "compare_tables",
    "manifest_path",
    "read_verified_manifest",
]

MANIFEST_FORMAT = 1
CHUNK_BYTES = 1 << 20  # 1 MiB reads and writes: pg_dump's output streams through the hash

# Tables named first in the restore's summary line; every table is checked all the same.
SUMMARY_TABLES = ("readings", "alerts", "alert_events", "dead_letters")


@dataclass(frozen=True, slots=True)
class TableDigest:
    """Rows of one table and, per bucket (a UTC day or ``all``), ``[rows, hash sum]``."""

    rows: int
    buckets: Mapping[str, tuple[int, str]]


@dataclass(frozen=True, slots=True, kw_only=True)
class BackupManifest:
    """What ``FILE.manifest.json`` says about ``FILE``; written after the dump is durable."""

    file: str
    size_bytes: int
    sha256: str
    database: str
    schema_version: int
    flavour: str
    server_version: str
    pg_dump_version: str
    timescaledb_version: str | None
    started_at: str
    finished_at: str
    tables: Mapping[str, TableDigest]
    schema_digests: Mapping[str, str]  # kind -> md5 of its sorted, deparsed definitions
    format: int = MANIFEST_FORMAT

    def to_json(self) -> str:
        data = asdict(self)
        data["tables"] = {
            name: {"rows": t.rows, "buckets": {k: list(v) for k, v in t.buckets.items()}}
            for name, t in self.tables.items()
        }
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> BackupManifest:
        data = json.loads(text)
        if data.get("format") != MANIFEST_FORMAT:
            raise StoreError(
                f"manifest format {data.get('format')!r} is not {MANIFEST_FORMAT}; "
                "restore it with the Veille version that wrote it"
            )
        tables = {
            name: TableDigest(
                int(t["rows"]), {k: (int(v[0]), str(v[1])) for k, v in t["buckets"].items()}
            )
            for name, t in data.pop("tables").items()
        }
        return cls(**data, tables=tables)


@dataclass(frozen=True, slots=True)
class RestoreReport:
    manifest: BackupManifest
    cleaned: bool  # an existing database was overwritten (--yes)
    schema_checked: bool  # definitions compared too (same PostgreSQL major version)

    def line(self) -> str:
        tables = self.manifest.tables
        named = [f"{tables[t].rows} {t}" for t in SUMMARY_TABLES if t in tables]
        others = len(tables) - len(named)
        schema = "" if self.schema_checked else "; definitions not compared (other major)"
        return (
            f"restore verified: {', '.join(named)} and {others} other tables "
            f"({sum(t.rows for t in tables.values())} rows) match the backup{schema}"
        )


def manifest_path(backup: Path) -> Path:
    return backup.with_name(backup.name + ".manifest.json")


def compare_tables(
    expected: Mapping[str, TableDigest], actual: Mapping[str, TableDigest]
) -> list[str]:
    """Every difference between the backup's digests and the restored database's, in words."""
    problems: list[str] = []
    for name in sorted(expected.keys() - actual.keys()):
        problems.append(f"table {name} is in the backup but missing from the database")
    for name in sorted(actual.keys() - expected.keys()):
        problems.append(f"table {name} is in the database but not in the backup")
    for name in sorted(expected.keys() & actual.keys()):
        want, got = expected[name], actual[name]
        if want.rows != got.rows:
            problems.append(f"{name}: {want.rows} rows in the backup, {got.rows} restored")
        for bucket in sorted(want.buckets.keys() | got.buckets.keys()):
            w, g = want.buckets.get(bucket, (0, "0")), got.buckets.get(bucket, (0, "0"))
            if w[0] != g[0]:
                problems.append(f"{name} {bucket}: {w[0]} rows in the backup, {g[0]} restored")
            elif w[1] != g[1]:
                problems.append(f"{name} {bucket}: same {w[0]} rows, different content")
    return problems


def compare_schema(expected: Mapping[str, str], actual: Mapping[str, str]) -> list[str]:
    return [
        f"schema: the {kind} differ from the backup's"
        for kind in sorted(expected.keys() | actual.keys())
        if expected.get(kind) != actual.get(kind)
    ]


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


async def read_verified_manifest(backup: Path) -> BackupManifest:
    """The manifest of ``backup``, after checking the file is byte for byte what was written."""
    mpath = manifest_path(backup)
    if not backup.is_file():
        raise StoreError(f"backup file {backup} does not exist")
    if not mpath.is_file():
        raise StoreError(
            f"{mpath} is missing: a backup without its manifest cannot be verified; "
            "copy the manifest next to the file"
        )
    manifest = BackupManifest.from_json(mpath.read_text())
    actual = await asyncio.to_thread(_file_sha256, backup)
    if actual != manifest.sha256:
        raise StoreError(
            f"{backup} is damaged: its SHA-256 is {actual}, the manifest says "
            f"{manifest.sha256}; nothing was restored, use another backup"
        )
    if manifest.schema_version > SCHEMA_VERSION:
        raise StoreError(
            f"the backup is schema v{manifest.schema_version}, this Veille knows up to "
            f"v{SCHEMA_VERSION}; restore it with the Veille version that wrote it"
        )
    return manifest
