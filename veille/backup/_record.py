"""What ``veille backup`` records beside the repository: each backup's restore point and the
digests of the database there, the yardstick ``veille backup verify`` measures a restore by.

A record is no secret (counts and hashes) but says what the backup must contain: keep the
directory with the same care as the repository's key, apart from the repository.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from store import DatabaseDigests, TableDigest
from veille.errors import BackupError

__all__ = ["BackupRecord"]

RECORD_FORMAT = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class BackupRecord:
    label: str  # pgBackRest's backup label, e.g. 20261203-184003F
    restore_point: str  # recovery_target_name: the state the digests describe
    lsn: str
    taken_at: str  # ISO 8601, UTC
    digests: DatabaseDigests

    @staticmethod
    def path(directory: Path, label: str) -> Path:
        return directory / f"{label}.json"

    def write(self, directory: Path) -> Path:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        d = self.digests
        data = {
            "format": RECORD_FORMAT, "label": self.label, "restore_point": self.restore_point,
            "lsn": self.lsn, "taken_at": self.taken_at,
            "schema_version": d.schema_version, "flavour": d.flavour, "schema": dict(d.schema),
            "tables": {
                name: {"rows": t.rows, "buckets": {k: list(v) for k, v in t.buckets.items()}}
                for name, t in d.tables.items()
            },
        }  # fmt: skip
        path = self.path(directory, self.label)
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
            file.flush()
            os.fsync(file.fileno())
        tmp.replace(path)
        return path

    @classmethod
    def read(cls, directory: Path, label: str) -> BackupRecord | None:
        path = cls.path(directory, label)
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        if data.get("format") != RECORD_FORMAT:
            raise BackupError(f"{path}: record format {data.get('format')!r} is unknown here")
        tables = {
            name: TableDigest(
                int(t["rows"]), {k: (int(v[0]), str(v[1])) for k, v in t["buckets"].items()}
            )
            for name, t in data["tables"].items()
        }
        return cls(
            label=data["label"], restore_point=data["restore_point"], lsn=data["lsn"],
            taken_at=data["taken_at"],
            digests=DatabaseDigests(
                data["schema_version"], data["flavour"], tables, data["schema"]
            ),
        )  # fmt: skip
