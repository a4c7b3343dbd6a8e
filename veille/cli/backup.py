"""``veille backup`` and ``veille restore``: a dump with a manifest, and a restore checked
against it. See docs/BACKUP.md."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from store import back_up, manifest_path, restore
from veille.errors import ConfigurationError
from veille.settings import Settings

from ._command import Subparsers, add_command

__all__ = ["register"]


def _backup(args: argparse.Namespace, settings: Settings) -> int:
    out = Path(args.out)
    if out.exists() and not args.force:
        raise ConfigurationError(f"{out} exists; choose another --out or pass --force")
    manifest = asyncio.run(back_up(settings.database_url.get_secret_value(), out))
    readings = manifest.tables.get("readings")
    print(
        f"wrote {out} ({manifest.size_bytes / 2**20:.1f} MiB, sha256 {manifest.sha256[:16]}...) "
        f"and {manifest_path(out)}: schema v{manifest.schema_version} ({manifest.flavour}), "
        f"{len(manifest.tables)} tables, {readings.rows if readings else 0} readings"
    )
    return 0


def _restore(args: argparse.Namespace, settings: Settings) -> int:
    target = args.into or settings.database_url.get_secret_value()
    if args.into and "password" in conninfo_to_dict(args.into):
        print(
            "veille: warning: the password given in --into is visible in the process list; "
            "prefer PGPASSWORD or ~/.pgpass",
            file=sys.stderr,
        )
    report = asyncio.run(restore(Path(args.file), target, overwrite=args.yes))
    if report.cleaned:
        print("replaced the previous contents of the target database (--yes)")
    print(report.line())
    return 0


def register(sub: Subparsers) -> None:
    backup = add_command(
        sub, "backup", _backup, help="dump the database with a manifest of counts and checksums",
        description="Dump the database of VEILLE_DATABASE_URL with pg_dump (custom format) to "
        "--out, and write OUT.manifest.json: schema version, row counts and content checksums "
        "taken in the dump's own snapshot, the file's SHA-256. Both files are mode 0600.",
    )  # fmt: skip
    backup.add_argument("--out", required=True, help="the backup file to write")
    backup.add_argument("--force", action="store_true", help="overwrite an existing --out")

    restore_ = add_command(
        sub, "restore", _restore, help="restore a backup and prove the result matches its manifest",
        description="Check the file's SHA-256 against its manifest, restore it with pg_restore, "
        "then recount and re-checksum every table and compare with the manifest.",
    )  # fmt: skip
    restore_.add_argument("file", help="backup written by `veille backup`")
    restore_.add_argument(
        "--into", help="libpq URL of the target database (default VEILLE_DATABASE_URL)"
    )
    restore_.add_argument(
        "--yes", action="store_true",
        help="the target database is not empty: replace its contents",
    )  # fmt: skip
