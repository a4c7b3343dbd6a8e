"""Backups that prove themselves: ``pg_dump`` plus a manifest the restore is checked against.

The manifest is computed in the very snapshot ``pg_dump`` reads (``pg_export_snapshot`` and
``pg_dump --snapshot``), so writes arriving during the backup never make it disagree with the
dump. It holds, per table, the row count and a content digest per bucket: per UTC day for the
big time-ordered tables, one bucket for the rest. A bucket's digest is the row count and the
sum of the first 64 bits of ``md5(row::text)``: order-independent, so PostgreSQL computes it
in one sequential scan with a hash aggregate of one row per day (constant memory, no sort),
and a mismatch names the day that differs. Passwords reach ``pg_dump`` and ``pg_restore``
through a temporary 0600 passfile, never their command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow

from veille.errors import MissingDependencyError, StoreError

from ._schema import SCHEMA_VERSION, Flavour, recorded_flavour, recorded_version

__all__ = [
    "BackupManifest",
    "RestoreReport",
    "TableDigest",
    "back_up",
    "compare_schema",
    "compare_tables",
    "manifest_path",
    "read_verified_manifest",
    "restore",
    "schema_digests",
    "table_digests",
]

MANIFEST_FORMAT = 1
CHUNK_BYTES = 1 << 20  # 1 MiB reads and writes: pg_dump's output streams through the hash

# Big, time-ordered tables are digested per UTC day so a mismatch says which day differs.
DAY_COLUMNS = {
    "readings": "measured_at",
    "alerts": "opened_at",
    "alert_events": "at",
    "dead_letters": "received_at",
}
# Tables named first in the restore's summary line; every table is checked all the same.
SUMMARY_TABLES = ("readings", "alerts", "alert_events", "dead_letters")

# Row text must not depend on the session: fixed time zone, date, float and bytea output.
_STABLE_OUTPUT = (
    "SET TimeZone = 'UTC'",
    "SET DateStyle = 'ISO, YMD'",
    "SET IntervalStyle = 'postgres'",
    "SET extra_float_digits = 1",
    "SET bytea_output = 'hex'",
)

# Ordinary and partitioned tables of the application's schemas, not their partitions, not
# TimescaleDB's chunks or catalogs, not objects that belong to an extension.
_USER_TABLES = """
    SELECT n.nspname, c.relname FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND n.nspname <> 'information_schema' AND n.nspname !~ '^(pg_|_?timescaledb)'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d
                      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                        AND d.deptype = 'e')
    ORDER BY 1, 2"""

# The definitions the data digests cannot see (a restored constraint with another name, a
# lost index), deparsed by the server, per kind; extension members and catalogs left out.
_SCHEMA_ITEMS = {
    "columns": """SELECT format('%s.%s.%s %s %s %s', n.nspname, c.relname, a.attname,
            format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid))
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm')
          AND n.nspname <> 'information_schema' AND n.nspname !~ '^(pg_|_?timescaledb)'""",
    "constraints": """SELECT format('%s.%s %s %s', n.nspname, c.relname, co.conname,
            pg_get_constraintdef(co.oid))
        FROM pg_constraint co JOIN pg_class c ON c.oid = co.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^(pg_|_?timescaledb)'""",
    "indexes": """SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
        JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^(pg_|_?timescaledb)'""",
    "views": """SELECT format('%s.%s %s', n.nspname, c.relname, pg_get_viewdef(c.oid))
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('v', 'm')
          AND n.nspname <> 'information_schema' AND n.nspname !~ '^(pg_|_?timescaledb)'""",
    "functions": """SELECT pg_get_functiondef(p.oid) FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE p.prokind IN ('f', 'p')
          AND n.nspname <> 'information_schema' AND n.nspname !~ '^(pg_|_?timescaledb)'
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                          AND d.objid = p.oid AND d.deptype = 'e')""",
    "triggers": """SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t
        JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT t.tgisinternal
          AND n.nspname <> 'information_schema' AND n.nspname !~ '^(pg_|_?timescaledb)'""",
}


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


# -- client programs ---------------------------------------------------------------------
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


# -- libpq credentials --------------------------------------------------------------------
@contextlib.contextmanager
def _libpq_target(conninfo: str) -> Iterator[tuple[str, dict[str, str]]]:
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


async def _connect(conninfo: str) -> psycopg.AsyncConnection[TupleRow]:
    try:
        conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
    except psycopg.OperationalError as exc:
        raise StoreError(f"cannot connect to the database: {exc}".strip()) from exc
    for statement in _STABLE_OUTPUT:
        await conn.execute(statement.encode())
    return conn


# -- digests ------------------------------------------------------------------------------
async def table_digests(conn: psycopg.AsyncConnection[TupleRow]) -> dict[str, TableDigest]:
    """Row counts and content digests of every application table, in the current snapshot."""
    tables = await (await conn.execute(_USER_TABLES.encode())).fetchall()
    digests: dict[str, TableDigest] = {}
    for schema, table in tables:
        name = table if schema == "public" else f"{schema}.{table}"
        column = DAY_COLUMNS.get(table) if schema == "public" else None
        bucket = (
            sql.SQL("to_char(t.{} AT TIME ZONE 'UTC', 'YYYY-MM-DD')").format(sql.Identifier(column))
            if column
            else sql.SQL("'all'")
        )
        query = sql.SQL(
            "SELECT {bucket}, count(*), "
            "coalesce(sum(('x' || left(md5(t::text), 16))::bit(64)::bigint), 0)::text "
            "FROM {table} AS t GROUP BY 1"
        ).format(bucket=bucket, table=sql.Identifier(schema, table))
        rows = await (await conn.execute(query)).fetchall()
        buckets = {str(b): (int(n), str(s)) for b, n, s in rows}
        digests[name] = TableDigest(
            sum(n for n, _ in buckets.values()), dict(sorted(buckets.items()))
        )
    return digests


async def schema_digests(conn: psycopg.AsyncConnection[TupleRow]) -> dict[str, str]:
    """One md5 per kind of definition (columns, constraints, indexes, views, functions,
    triggers) of the application's schemas."""
    digests = {}
    for kind, query in _SCHEMA_ITEMS.items():
        row = await (
            await conn.execute(
                f"SELECT md5(coalesce(string_agg(x, E'\\n' ORDER BY x), '')) "  # noqa: S608
                f"FROM ({query}) AS s(x)".encode()
            )
        ).fetchone()
        assert row is not None
        digests[kind] = str(row[0])
    return digests


def compare_schema(expected: Mapping[str, str], actual: Mapping[str, str]) -> list[str]:
    return [
        f"schema: the {kind} differ from the backup's"
        for kind in sorted(expected.keys() | actual.keys())
        if expected.get(kind) != actual.get(kind)
    ]


async def _server_facts(conn: psycopg.AsyncConnection[TupleRow]) -> tuple[str, int, str | None]:
    row = await (
        await conn.execute(
            "SELECT current_setting('server_version'), "
            "current_setting('server_version_num')::int / 10000, "
            "(SELECT extversion FROM pg_extension WHERE extname = 'timescaledb')"
        )
    ).fetchone()
    assert row is not None
    return str(row[0]), int(row[1]), row[2]


# -- backup -------------------------------------------------------------------------------
async def _dump_to(
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


def _replace_durably(tmp: Path, final: Path) -> None:
    tmp.replace(final)
    dir_fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    finally:
        os.close(dir_fd)


def _write_manifest(manifest: BackupManifest, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, manifest.to_json().encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    _replace_durably(tmp, path)


async def back_up(conninfo: str, out: Path) -> BackupManifest:
    """Dump the database to ``out`` and write ``out.manifest.json``; both 0600, atomic."""
    started = datetime.now(UTC)
    out = out.resolve()
    if not out.parent.is_dir():
        raise StoreError(f"directory {out.parent} does not exist; create it (mode 0700) first")
    tool = await find_pg_tool("pg_dump")
    async with await _connect(conninfo) as conn:
        server_version, server_major, timescale = await _server_facts(conn)
        if server_major > tool.major:
            raise StoreError(
                f"the server runs PostgreSQL {server_major} but {tool.path} is version "
                f"{tool.major}, which cannot dump it; install postgresql-client-{server_major}"
            )
        flavour, version = await recorded_flavour(conn), await recorded_version(conn)
        if flavour is None or version is None:
            raise StoreError("this database has no Veille schema; run `veille migrate` first")
        tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
        # One REPEATABLE READ transaction: its snapshot is exported to pg_dump and the
        # digests read the same one, so they describe exactly what the dump holds.
        await conn.set_autocommit(False)
        await conn.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
        await conn.set_read_only(True)
        try:
            async with conn.transaction():
                row = await (await conn.execute("SELECT pg_export_snapshot()")).fetchone()
                assert row is not None
                with _libpq_target(conninfo) as (target, env):
                    dump = asyncio.create_task(_dump_to(tool, target, env, str(row[0]), tmp))
                    try:
                        tables = await table_digests(conn)
                        schema = await schema_digests(conn)
                    except BaseException:
                        dump.cancel()  # pg_dump is killed in _dump_to's finally
                        with contextlib.suppress(asyncio.CancelledError, StoreError):
                            await dump
                        raise
                    size, sha256 = await dump
            await asyncio.to_thread(_replace_durably, tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    manifest = BackupManifest(
        file=out.name, size_bytes=size, sha256=sha256,
        database=str(conninfo_to_dict(conninfo).get("dbname", "")),
        schema_version=version, flavour=flavour.value, server_version=server_version,
        pg_dump_version=tool.version, timescaledb_version=timescale,
        started_at=started.isoformat(), finished_at=datetime.now(UTC).isoformat(),
        tables=tables, schema_digests=schema,
    )  # fmt: skip
    await asyncio.to_thread(_write_manifest, manifest, manifest_path(out))
    return manifest


# -- restore ------------------------------------------------------------------------------
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


async def _existing_relations(conn: psycopg.AsyncConnection[TupleRow]) -> list[str]:
    rows = await (await conn.execute(_USER_TABLES.encode())).fetchall()
    return [f"{s}.{t}" for s, t in rows]


@contextlib.asynccontextmanager
async def _timescale_restore_mode(
    conn: psycopg.AsyncConnection[TupleRow], manifest: BackupManifest
) -> AsyncIterator[None]:
    """TimescaleDB's documented procedure: extension first, then ``timescaledb_pre_restore()``
    before ``pg_restore`` and ``timescaledb_post_restore()`` after, whatever happened."""
    if manifest.flavour != Flavour.TIMESCALE.value:
        yield
        return
    available = await (
        await conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    ).fetchone()
    if available is None:
        raise StoreError(
            f"the backup is a TimescaleDB database (extension {manifest.timescaledb_version}) "
            "but the target server has no TimescaleDB; install that version there first"
        )
    await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    await conn.execute("SELECT timescaledb_pre_restore()")
    try:
        yield
    finally:
        await conn.execute("SELECT timescaledb_post_restore()")


async def _pg_restore(
    tool: PgTool, backup: Path, conninfo: str, *, clean: bool, single_transaction: bool
) -> None:
    with _libpq_target(conninfo) as (target, env):
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


async def restore(backup: Path, conninfo: str, *, overwrite: bool = False) -> RestoreReport:
    """Check the file, restore it into ``conninfo``'s database, then prove the result equal."""
    manifest = await read_verified_manifest(backup)
    tool = await find_pg_tool("pg_restore")
    written_by = tool_major(manifest.pg_dump_version)
    if written_by > tool.major:
        raise StoreError(
            f"the backup was written by {manifest.pg_dump_version}; {tool.path} is "
            f"version {tool.major} and cannot read it: install postgresql-client-{written_by}"
        )
    async with await _connect(conninfo) as conn:
        existing = await _existing_relations(conn)
        if existing and not overwrite:
            shown = ", ".join(existing[:5]) + (" ..." if len(existing) > 5 else "")
            raise StoreError(
                f"the target database is not empty ({len(existing)} tables: {shown}); "
                "restore into an empty database, or pass --yes to replace its contents"
            )
        if existing and manifest.flavour == Flavour.TIMESCALE.value:
            raise StoreError(
                "a TimescaleDB restore needs an empty database (pg_restore --clean would drop "
                "the extension under the restore); drop and re-create the database first"
            )
        async with _timescale_restore_mode(conn, manifest):
            await _pg_restore(
                tool, backup, conninfo, clean=bool(existing),
                single_transaction=manifest.flavour == Flavour.POSTGRES.value,
            )  # fmt: skip
        schema_checked = await _check_restored(conn, manifest)
    return RestoreReport(manifest, cleaned=bool(existing), schema_checked=schema_checked)


async def _check_restored(
    conn: psycopg.AsyncConnection[TupleRow], manifest: BackupManifest
) -> bool:
    """Raise with every difference; returns whether the definitions were compared too (only
    on the backup's PostgreSQL major version: another one deparses them differently)."""
    version, flavour = await recorded_version(conn), await recorded_flavour(conn)
    problems = []
    if version != manifest.schema_version or flavour is None or flavour.value != manifest.flavour:
        problems.append(
            f"schema: backup v{manifest.schema_version} ({manifest.flavour}), restored "
            f"v{version} ({flavour.value if flavour else 'none'})"
        )
    _, server_major, _ = await _server_facts(conn)
    same_major = manifest.server_version.split(".")[0] == str(server_major)
    if same_major:
        problems += compare_schema(manifest.schema_digests, await schema_digests(conn))
    problems += compare_tables(manifest.tables, await table_digests(conn))
    if problems:
        raise StoreError(
            "restore finished but does NOT match the backup; do not use this database:\n  "
            + "\n  ".join(problems)
        )
    return same_major
