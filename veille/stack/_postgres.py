"""A private PostgreSQL cluster for the local stack (TimescaleDB is used when installed).

``initdb`` refuses to run as root, so as root the cluster runs as the ``postgres`` user, in a
directory that user can reach even when the checkout sits in a private 0700 directory.
Authentication is scram-sha-256 with generated passwords, as in production.
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from veille.errors import MissingDependencyError, StackError

from ._pgbackrest import StackBackupFiles
from ._process import ProcessHandle, spawn, stop

__all__ = ["AUDITED_ROLES", "PostgresCluster", "audit_settings", "find_pg_bindir"]

# As root the cluster must live where the `postgres` user can reach it; the directory is
# created 0700 and owned by that user, so the usual /var/tmp concerns do not apply.
SHARED_BASE = Path("/var/tmp/veille-postgres")  # noqa: S108
APP_USER = "veille"
APP_DATABASE = "veille"


def find_pg_bindir() -> Path:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise MissingDependencyError(
        "PostgreSQL server binaries not found; run `apt-get install -y postgresql-15` "
        "(or `make bootstrap`)"
    )


# Roles people use to type SQL (the superuser, the schema owner): pgaudit logs what they
# read and write. Components are not audited here: the clinic writes its own audit rows,
# and the sink's inserts would drown the log.
AUDITED_ROLES = ("postgres", APP_USER)
# What pgaudit logs for them: reads, writes, DDL, role changes; one line per relation; no
# bound parameters (they can carry a patient's identity); not psql's catalog queries.
AUDIT_ROLE_SETTINGS = {
    "pgaudit.log": "read, write, ddl, role",
    "pgaudit.log_relation": "on",
    "pgaudit.log_parameter": "off",
    "pgaudit.log_catalog": "off",
}


def audit_settings() -> dict[str, str]:
    """``-c`` options that load pgaudit (Debian ``postgresql-15-pgaudit``), or none when it is
    not installed (``veille stack up`` says so). No ``CREATE EXTENSION``: session logging
    works from the preloaded library, and a dump holding the extension would fail to import
    on a server without it."""
    library = find_pg_bindir().parent / "lib" / "pgaudit.so"
    if not library.exists():
        return {}
    # Who (user@database) and from where (client address) on every line pgaudit writes.
    return {"shared_preload_libraries": "pgaudit", "log_line_prefix": "%m [%p] %q%u@%d %r "}


def _service_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise MissingDependencyError(
            "running as root needs the `postgres` system user (installed with postgresql-15)"
        ) from exc
    return "postgres"


@dataclass(frozen=True, slots=True)
class PostgresCluster:
    """Where the cluster lives; ``data_dir`` may be outside the state dir (see module doc)."""

    state_dir: Path
    data_dir: Path
    socket_dir: Path
    user: str | None

    @classmethod
    def for_state_dir(cls, state_dir: Path) -> PostgresCluster:
        user = _service_user()
        if user is None:
            base = state_dir / "postgres"
        else:
            tag = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:12]
            base = SHARED_BASE / tag
        return cls(state_dir, base / "data", base / "run", user)

    @property
    def base_dir(self) -> Path:
        return self.data_dir.parent

    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> str:
        """Create the cluster; returns the superuser password (kept in the state dir)."""
        bindir = find_pg_bindir()
        self.base_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.socket_dir.mkdir(exist_ok=True, mode=0o700)
        password = secrets.token_urlsafe(24)
        pwfile = self.base_dir / "pwfile"
        pwfile.write_text(password + "\n")
        if self.user:
            SHARED_BASE.chmod(0o755)
            for path in (self.base_dir, self.socket_dir, pwfile):
                shutil.chown(path, self.user, self.user)
        try:
            subprocess.run(
                [
                    str(bindir / "initdb"),
                    "-D", str(self.data_dir),
                    "-U", "postgres",
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ],
                check=True,
                capture_output=True,
                cwd=self.base_dir,
                user=self.user,
                group=self.user,
                extra_groups=[] if self.user else None,
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            raise StackError(f"initdb failed: {exc.stderr.decode(errors='replace')}") from exc
        finally:
            pwfile.unlink(missing_ok=True)
        return password

    @property
    def backup_files(self) -> StackBackupFiles:
        """pgBackRest's configuration and repository, beside the data directory."""
        return StackBackupFiles(self.base_dir / "pgbackrest")

    def start(
        self,
        port: int,
        *,
        settings: Mapping[str, str] | None = None,
        env: dict[str, str] | None = None,
    ) -> ProcessHandle:
        """``postgres`` on ``port``; ``settings`` are extra ``-c`` options (WAL archiving)."""
        bindir = find_pg_bindir()
        extra = [arg for key, value in (settings or {}).items() for arg in ("-c", f"{key}={value}")]
        return spawn(
            [
                str(bindir / "postgres"),
                "-D", str(self.data_dir),
                "-p", str(port),
                "-c", "listen_addresses=127.0.0.1",
                "-c", f"unix_socket_directories={self.socket_dir}",
                "-c", "max_connections=100",
                "-c", "shared_buffers=256MB",
                "-c", "log_min_messages=warning",
                *extra,
            ],
            log_path=self.state_dir / "postgres.log",
            env=env,
            user=self.user,
        )  # fmt: skip

    @staticmethod
    def stop(handle: ProcessHandle) -> bool:
        """Fast shutdown (SIGINT: SIGTERM would wait for clients to leave), by PID."""
        return stop(handle, sig=signal.SIGINT)

    def purge(self) -> None:
        shutil.rmtree(self.base_dir, ignore_errors=True)
