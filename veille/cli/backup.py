"""``veille backup [verify | list | export | import]`` and ``veille restore``: pgBackRest's
encrypted backups with WAL archiving, each proven by a restore; ``pg_dump`` as a portable,
verified export. See docs/BACKUP.md."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from store import back_up as export_database
from store import manifest_path
from store import restore as import_database
from veille.backup import (
    PgBackRest,
    RecoveryTarget,
    back_up,
    list_backups,
    restore_cluster,
    verify_backup,
)
from veille.errors import ConfigurationError
from veille.settings import Settings

from ._command import Subparsers, add_command

__all__ = ["register"]


def _records(settings: Settings) -> Path:
    return settings.backup_records_dir or settings.state_dir / "backups"


def _backup(args: argparse.Namespace, settings: Settings) -> int:
    action = args.action or "take"
    if action == "export":
        return _export(args, settings)
    if action == "import":
        return _import(args, settings)
    repo = PgBackRest.from_settings(settings)
    owner_url = (settings.backup_database_url or settings.database_url).get_secret_value()
    if action == "list":
        backups = asyncio.run(list_backups(repo))
        for summary in backups:
            print(summary.line())
        if not backups:
            print("no backup yet; run `veille backup`")
        return 0
    if action == "verify":
        report = asyncio.run(verify_backup(repo, owner_url, _records(settings), label=args.set))
        print(report.line())
        return 0
    summary, record = asyncio.run(back_up(repo, owner_url, _records(settings), kind=args.type))
    rows = sum(t.rows for t in record.digests.tables.values())
    print(summary.line())
    print(
        f"restore point {record.restore_point} at {record.lsn}: {len(record.digests.tables)} "
        f"tables, {rows} rows recorded in {_records(settings) / (summary.label + '.json')}"
    )
    return 0


def _export(args: argparse.Namespace, settings: Settings) -> int:
    out = Path(args.out)
    if out.exists() and not args.force:
        raise ConfigurationError(f"{out} exists; choose another --out or pass --force")
    manifest = asyncio.run(export_database(settings.database_url.get_secret_value(), out))
    readings = manifest.tables.get("readings")
    print(
        f"wrote {out} ({manifest.size_bytes / 2**20:.1f} MiB, sha256 {manifest.sha256[:16]}...) "
        f"and {manifest_path(out)}: schema v{manifest.schema_version} ({manifest.flavour}), "
        f"{len(manifest.tables)} tables, {readings.rows if readings else 0} readings"
    )
    return 0


def _import(args: argparse.Namespace, settings: Settings) -> int:
    target = args.into or settings.database_url.get_secret_value()
    if args.into and "password" in conninfo_to_dict(args.into):
        print(
            "veille: warning: the password given in --into is visible in the process list; "
            "prefer PGPASSWORD or ~/.pgpass",
            file=sys.stderr,
        )
    report = asyncio.run(import_database(Path(args.file), target, overwrite=args.yes))
    if report.cleaned:
        print("replaced the previous contents of the target database (--yes)")
    print(report.line())
    return 0


def _restore(args: argparse.Namespace, settings: Settings) -> int:
    repo = PgBackRest.from_settings(settings)
    if args.time and args.immediate:
        raise ConfigurationError("--time and --immediate exclude each other")
    target = (
        RecoveryTarget.time(args.time)
        if args.time
        else RecoveryTarget.immediate()
        if args.immediate
        else RecoveryTarget.latest()
    )
    asyncio.run(
        restore_cluster(
            repo, Path(args.to), label=args.set, target=target, replaces_source=args.replace_lost
        )
    )
    archiving = (
        "WAL archiving kept: it archives into the same repository, on a new timeline; start it "
        "where the lost server ran (its port, its configuration), as the repository's owner"
        if args.replace_lost
        else "archive_mode=off. Start it on a free port as the repository's owner, e.g. "
        f"`postgres -D {Path(args.to).resolve()} -p PORT`"
    )
    print(
        f"restored into {Path(args.to).resolve()} ({target.kind}"
        f"{' ' + target.value if target.value else ''}); recovery runs when it starts, with "
        + archiving
    )
    return 0


def register(sub: Subparsers) -> None:
    backup = add_command(
        sub, "backup", _backup,
        help="pgBackRest backup (encrypted, with WAL archiving); verify, list, export, import",
        description="Without an action: a pgBackRest backup of the cluster (VEILLE_BACKUP_"
        "CONFIG), then a restore point and the digests of the database there (recorded in "
        "VEILLE_BACKUP_RECORDS_DIR). `verify`: pgbackrest verify, then restore into a scratch "
        "cluster and compare with the digests. `list`: the backups. `export`/`import`: a "
        "portable pg_dump with a checksummed manifest.",
    )  # fmt: skip
    backup.add_argument(
        "--type", choices=["full", "diff", "incr"], default="full",
        help="without an action: the kind of backup (default full)",
    )  # fmt: skip
    actions = backup.add_subparsers(dest="action", required=False, metavar="ACTION")
    verify = actions.add_parser(
        "verify", help="verify the repository, restore a backup into a scratch cluster, compare"
    )
    verify.add_argument("--set", help="the backup label (default: the latest)")
    actions.add_parser("list", help="the backups in the repository (pgbackrest info)")
    export = actions.add_parser(
        "export",
        help="pg_dump the database with a manifest of counts and checksums",
        description="Dump the database of VEILLE_DATABASE_URL with pg_dump (custom format) to "
        "--out, and write OUT.manifest.json: schema version, row counts and content checksums "
        "taken in the dump's own snapshot, the file's SHA-256. Both files are mode 0600.",
    )
    export.add_argument("--out", required=True, help="the dump file to write")
    export.add_argument("--force", action="store_true", help="overwrite an existing --out")
    import_ = actions.add_parser(
        "import",
        help="restore an export and prove the result matches its manifest",
        description="Check the file's SHA-256 against its manifest, restore it with pg_restore, "
        "then recount and re-checksum every table and compare with the manifest.",
    )
    import_.add_argument("file", help="dump written by `veille backup export`")
    import_.add_argument(
        "--into", help="libpq URL of the target database (default VEILLE_DATABASE_URL)"
    )
    import_.add_argument(
        "--yes", action="store_true",
        help="the target database is not empty: replace its contents",
    )  # fmt: skip

    restore_ = add_command(
        sub, "restore", _restore,
        help="restore a pgBackRest backup into a new data directory (never over a cluster)",
        description="Restore a backup (default: the latest) into --to, a directory that must "
        "not exist or be empty, recovering to the latest archived WAL (default), the backup's "
        "end (--immediate) or a time (--time). It does not start it.",
    )  # fmt: skip
    restore_.add_argument("--to", required=True, help="the new data directory")
    restore_.add_argument("--set", help="the backup label (default: the latest)")
    restore_.add_argument("--time", help="recover to this time, e.g. '2026-12-03 18:40:00+00'")
    restore_.add_argument(
        "--immediate", action="store_true", help="recover only to the end of the backup"
    )
    restore_.add_argument(
        "--replace-lost",
        action="store_true",
        help="the restored cluster replaces the lost server (docs/OPERATIONS.md): keep WAL "
        "archiving on instead of switching it off as for a copy",
    )
