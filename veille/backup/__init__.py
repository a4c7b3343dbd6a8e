"""Physical backups through pgBackRest: encrypted, compressed, with WAL archiving for
point-in-time recovery, each one proven by restoring it (docs/BACKUP.md).

The three steps a recovery drill needs are functions: :func:`back_up`,
:func:`restore_cluster` (into a new data directory, to the latest archived WAL by default)
and :func:`start_cluster`.
"""

from __future__ import annotations

from ._cluster import RecoveryTarget, RestoredCluster, restore_cluster, start_cluster
from ._operations import BackupSummary, VerifyReport, back_up, list_backups, verify_backup
from ._pgbackrest import PgBackRest
from ._record import BackupRecord

__all__ = [
    "BackupRecord",
    "BackupSummary",
    "PgBackRest",
    "RecoveryTarget",
    "RestoredCluster",
    "VerifyReport",
    "back_up",
    "list_backups",
    "restore_cluster",
    "start_cluster",
    "verify_backup",
]
