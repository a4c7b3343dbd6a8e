"""The PostgreSQL client programs: which ``pg_dump``/``pg_restore``, and running them.

Debian installs one per major version and a newer client reads older servers, never the
reverse, so the newest installed one is used and its major is checked by the caller.
Passwords reach the programs through a temporary 0600 passfile, never their command line:
``ps`` would show it.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from veille.errors import MissingDependencyError, StoreError

from ._backup_manifest import CHUNK_BYTES

__all__ = ["PgTool", "dump_to", "find_pg_tool", "libpq_target", "run_pg_restore", "tool_major"]


@dataclass(frozen=True, slots=True)
class PgTool:
    path: Path
    version: str  # what `--version` printed: "pg_dump (PostgreSQL) 15.10 (Debian ...)"
    major: int


def tool_major(version: str) -> int:
    match = re.search(r"\(PostgreSQL\)\s+(\d+)", version)
    if match is None:
        raise StoreError(f"cannot read a PostgreSQL version in {version!r}")
    return int(match.group(1))


async def find_pg_tool(name: str) -> PgTool:
    """The newest ``name`` installed: Debian keeps one per major version (a newer pg_dump
    reads older servers, never the reverse)."""
    found = [Path(p) for p in glob.glob(f"/usr/lib/postgresql/*/bin/{name}")]
    on_path = shutil.which(name)
    found += [Path(on_path)] if on_path else []
    if not found:
        raise MissingDependencyError(
            f"{name} not found; install the PostgreSQL client programs of your server's major "
            "version or newer, e.g. `apt-get install -y postgresql-client-15`"
        )
    tools = []
    for path in found:
        proc = await asyncio.create_subprocess_exec(
            str(path), "--version", stdout=asyncio.subprocess.PIPE
        )
        out, _ = await proc.communicate()
        version = out.decode().strip()
        tools.append(PgTool(path, version, tool_major(version)))
    return max(tools, key=lambda t: t.major)


@contextlib.contextmanager
def libpq_target(conninfo: str) -> Iterator[tuple[str, dict[str, str]]]:
    """The conninfo without its password (for argv) and an environment whose PGPASSFILE, a
    0600 temporary file removed afterwards, holds it: ``ps`` shows neither."""
    params = conninfo_to_dict(conninfo)
    password = params.pop("password", None)
    if password is None:  # the user's own PGPASSWORD or ~/.pgpass applies
        yield make_conninfo("", **params), dict(os.environ)
        return
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}  # it would win
    fd, path = tempfile.mkstemp(prefix="veille-pgpass-")  # mode 0600
    try:
        escaped = str(password).replace("\\", "\\\\").replace(":", "\\:")
        with os.fdopen(fd, "w") as passfile:
            passfile.write(f"*:*:*:*:{escaped}\n")
        yield make_conninfo("", **params), {**env, "PGPASSFILE": path}
    finally:
        Path(path).unlink(missing_ok=True)


async def dump_to(
    tool: PgTool, target: str, env: dict[str, str], snapshot: str, tmp: Path
) -> tuple[int, str]:
    """Stream ``pg_dump --format=custom`` into ``tmp`` (0600), hashing as it writes; returns
    the size and the SHA-256."""
    size, sha256 = 0, hashlib.sha256()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    proc = await asyncio.create_subprocess_exec(
        str(tool.path), "--format=custom", f"--snapshot={snapshot}", "--no-password",
        f"--dbname={target}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    errors = asyncio.create_task(proc.stderr.read())
    try:

        def write(chunk: bytes) -> None:
            os.write(fd, chunk)  # a regular file: short writes do not happen
            sha256.update(chunk)

        while chunk := await proc.stdout.read(CHUNK_BYTES):
            await asyncio.to_thread(write, chunk)
            size += len(chunk)
        await asyncio.to_thread(os.fsync, fd)
        code = await proc.wait()
    finally:
        os.close(fd)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    stderr = (await errors).decode(errors="replace").strip()
    if code != 0:
        raise StoreError(f"pg_dump failed (exit {code}): {stderr}")
    return size, sha256.hexdigest()


async def run_pg_restore(
    tool: PgTool, backup: Path, conninfo: str, *, clean: bool, single_transaction: bool
) -> None:
    with libpq_target(conninfo) as (target, env):
        args = [str(tool.path), "--no-owner", "--exit-on-error", "--no-password"]
        # --clean drops the extension with the rest on TimescaleDB; its restores start empty.
        args += ["--clean", "--if-exists"] if clean else []
        # Plain PostgreSQL: one transaction, so a failed restore leaves nothing half done.
        # TimescaleDB: its documented procedure, statement by statement.
        args += ["--single-transaction"] if single_transaction else []
        args += [f"--dbname={target}", str(backup)]
        proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
        )
        _, stderr = await proc.communicate()
    if proc.returncode != 0:
        raise StoreError(
            f"pg_restore failed (exit {proc.returncode}): {stderr.decode(errors='replace').strip()}"
        )
