"""Restore a backup into a new data directory, start it, stop it: the drill's three steps.

``restore_cluster`` never writes into a directory that holds anything, so it cannot
overwrite a cluster, running or not. The restored cluster starts with WAL archiving off:
it shares the source's system identifier, and its WAL must never reach the source's
repository.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from veille.errors import BackupError
from veille.stack import PostgresCluster, ProcessHandle, free_port

from ._pgbackrest import PgBackRest

__all__ = ["RecoveryTarget", "RestoredCluster", "restore_cluster", "start_cluster"]

RECOVERY_TIMEOUT_S = 600.0  # replaying a day of WAL on a small server takes minutes


@dataclass(frozen=True, slots=True)
class RecoveryTarget:
    """Where recovery stops: ``latest`` (every archived WAL segment), ``immediate`` (the
    backup's end), a restore point ``name`` or a ``time``."""

    kind: str
    value: str | None = None

    @classmethod
    def latest(cls) -> RecoveryTarget:
        return cls("latest")

    @classmethod
    def immediate(cls) -> RecoveryTarget:
        return cls("immediate")

    @classmethod
    def point(cls, name: str) -> RecoveryTarget:
        return cls("name", name)

    @classmethod
    def time(cls, timestamp: str) -> RecoveryTarget:
        return cls("time", timestamp)

    def options(self) -> list[str]:
        if self.kind == "latest":
            return ["--type=default"]
        value = [f"--target={self.value}"] if self.value else []
        return [f"--type={self.kind}", *value, "--target-action=promote"]


@dataclass(frozen=True, slots=True)
class RestoredCluster:
    """A started restored cluster; stop it with :meth:`stop` (by PID, fast shutdown)."""

    cluster: PostgresCluster
    handle: ProcessHandle
    port: int

    def conninfo(self, source: str) -> str:
        """``source`` (a URL of the backed-up database) pointed at this cluster instead."""
        params = conninfo_to_dict(source)
        params.update(host="127.0.0.1", port=str(self.port))
        return make_conninfo("", **params)

    def stop(self) -> bool:
        return PostgresCluster.stop(self.handle)

    def log_tail(self) -> str:
        log = self.cluster.state_dir / "postgres.log"
        return log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"


def _scratch_cluster(data_dir: Path, user: str | None) -> PostgresCluster:
    base = data_dir.parent
    return PostgresCluster(base, data_dir, base / f"{data_dir.name}.run", user)


async def restore_cluster(
    repo: PgBackRest,
    data_dir: Path,
    *,
    label: str | None = None,
    target: RecoveryTarget | None = None,
    replaces_source: bool = False,
) -> None:
    """Restore backup ``label`` (default: the latest) into ``data_dir``, which must not
    exist or be empty; recovery runs when the cluster starts (:func:`start_cluster`).

    ``replaces_source``: the restored cluster takes the lost one's place (a recovery, not
    a verification), so it keeps archiving its WAL into the same repository, on a new
    timeline; otherwise archiving is switched off in the restored copy."""
    data_dir = data_dir.resolve()
    if data_dir.exists() and any(data_dir.iterdir()):
        raise BackupError(
            f"refusing to restore into {data_dir}: it is not empty (a cluster's data "
            "directory?); restore into a new directory"
        )
    await repo.info()  # a wrong key is refused here, before anything is written
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if repo.user:
        shutil.chown(data_dir, repo.user, repo.user)
    archive = "preserve" if replaces_source else "off"
    options = [f"--pg1-path={data_dir}", f"--archive-mode={archive}"]
    options += [f"--set={label}"] if label else []
    await repo.run("restore", *options, *(target or RecoveryTarget.latest()).options())


async def start_cluster(
    repo: PgBackRest, data_dir: Path, source_conninfo: str, *, port: int | None = None
) -> RestoredCluster:
    """Start the restored cluster in ``data_dir`` on ``port`` (default: a free one) and wait
    until recovery has finished and it accepts writes; stopped again if it does not."""
    cluster = _scratch_cluster(data_dir.resolve(), repo.user)
    cluster.socket_dir.mkdir(mode=0o700, exist_ok=True)
    if repo.user:
        shutil.chown(cluster.socket_dir, repo.user, repo.user)
    port = port or free_port()
    env = {
        **repo.environment(),  # archive-get (restore_command) decrypts with the same key
        "PGBACKREST_CONFIG": str(repo.config),
        "PGBACKREST_STANZA": repo.stanza,
    }
    handle = cluster.start(port, settings={"archive_mode": "off"}, env=env)
    restored = RestoredCluster(cluster, handle, port)
    try:
        await _wait_promoted(restored, restored.conninfo(source_conninfo))
    except BaseException:
        restored.stop()
        raise
    return restored


async def _wait_promoted(restored: RestoredCluster, conninfo: str) -> None:
    deadline = time.monotonic() + RECOVERY_TIMEOUT_S
    while time.monotonic() < deadline:
        if not restored.handle.alive():
            raise BackupError(
                "the restored cluster stopped during recovery (WAL missing, damaged or "
                f"undecryptable?); its log ends with:\n{restored.log_tail()}"
            )
        try:
            async with await psycopg.AsyncConnection.connect(
                conninfo, autocommit=True, connect_timeout=2
            ) as conn:
                row = await (await conn.execute("SELECT pg_is_in_recovery()")).fetchone()
                if row is not None and not row[0]:
                    return
        except psycopg.OperationalError:
            pass  # still starting, or still in recovery and refusing connections
        await asyncio.sleep(0.2)
    raise BackupError(
        f"the restored cluster did not finish recovery within {RECOVERY_TIMEOUT_S:.0f} s; "
        f"its log ends with:\n{restored.log_tail()}"
    )
