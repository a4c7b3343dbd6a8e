"""A real TimescaleDB for SQL tests: PGlite (PostgreSQL 17 in WASM) served over TCP by node.

Why: TimescaleDB server packages cannot be installed here, but PGlite built with TimescaleDB
comes from npm, so every machine (developer or CI) can run the same SQL tests. It is a test
double with limits the tests must respect:

* one database session is shared by every connection: ``SET`` leaks between them, and
  psycopg's automatic prepares collide (``_pg3_0 already exists``), so always pass
  ``prepare_threshold=None``; prefer one autocommit connection per test;
* a connection opened while another one has a transaction open garbles that transaction's
  replies and its client hangs: open every connection (pools too) before any transaction;
* ``COPY ... FROM STDIN`` kills the session (every later connection is refused): insert with
  multi-row ``INSERT``;
* no background workers: run TimescaleDB policies by hand with ``CALL run_job(id)``;
* no TLS: the DSN carries ``sslmode=disable`` (the server drops an SSL request).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from veille.stack import free_port

__all__ = ["PGLITE_DIR", "PGliteError", "PGliteTimescale", "ensure_node_modules"]

PGLITE_DIR = Path(__file__).resolve().parent / "pglite"
NPM_CI = ("npm", "ci", "--legacy-peer-deps", "--no-audit", "--no-fund")
START_TIMEOUT_S = 30.0
STOP_GRACE_S = 5.0
_PORT_ATTEMPTS = 3  # a freshly picked free port can be taken before node binds it


class PGliteError(RuntimeError):
    """The PGlite TimescaleDB server could not be installed or started."""


def _tool(name: str, directory: Path) -> str:
    """Absolute path of ``node``/``npm``, or an error telling what to install and run."""
    found = shutil.which(name)
    if found is None:
        raise PGliteError(
            f"{name!r} is not on PATH; the TimescaleDB tests need Node.js >= 20 and npm "
            f"(Debian: apt-get install nodejs npm), then: cd {directory} && {' '.join(NPM_CI)}"
        )
    return found


def _installed(directory: Path) -> bool:
    """npm writes node_modules/.package-lock.json last, so a half-done install does not count."""
    return (directory / "node_modules" / ".package-lock.json").is_file()


def ensure_node_modules(directory: Path) -> None:
    """Install the pinned npm packages once, so a fresh clone needs no manual step.

    A lock file in the temporary directory keeps parallel test processes from running
    ``npm ci`` in the same directory at once.
    """
    directory = directory.resolve()
    if _installed(directory):
        return
    _tool("node", directory)
    npm = _tool("npm", directory)
    key = hashlib.sha256(str(directory).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"veille-pglite-npm-{key}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed(directory):
            return
        result = subprocess.run(
            [npm, *NPM_CI[1:]],
            cwd=directory,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0 or not _installed(directory):
        raise PGliteError(
            f"`{' '.join(NPM_CI)}` failed in {directory} (exit {result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )


def _drain(stream: IO[bytes]) -> None:
    """Keep reading the server's stdout so a stray print can never block it on a full pipe."""
    with contextlib.suppress(OSError, ValueError):
        while stream.read(65536):
            pass


class PGliteTimescale:
    """Context manager: a PGlite TimescaleDB on a free loopback port for the ``with`` body.

    The server is stopped by its pid on exit (SIGTERM, then SIGKILL after 5 s), also when
    the body raised. Its stdin is a pipe it watches, so it exits even if this process dies.
    """

    def __init__(
        self, directory: Path = PGLITE_DIR, *, start_timeout: float = START_TIMEOUT_S
    ) -> None:
        self.directory = directory.resolve()
        self.start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._drainer: threading.Thread | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The TCP port the server listens on (127.0.0.1 only)."""
        if self._port is None:
            raise PGliteError("the PGlite server is not running; use it as a context manager")
        return self._port

    @property
    def dsn(self) -> str:
        """libpq URL. Any user, password and database name are accepted, but a password must
        be given (the server asks for one); the session is always ``postgres`` on
        ``template1``. TLS is not supported."""
        return f"postgresql://postgres:postgres@127.0.0.1:{self.port}/postgres?sslmode=disable"

    @property
    def process(self) -> subprocess.Popen[bytes]:
        """The node process, for tests that check it is gone after exit."""
        if self._process is None:
            raise PGliteError("the PGlite server was never started")
        return self._process

    @property
    def pid(self) -> int:
        return self.process.pid

    def __enter__(self) -> PGliteTimescale:
        ensure_node_modules(self.directory)
        node = _tool("node", self.directory)
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            try:
                self._start(node, free_port())
                return self
            except BaseException as error:  # also Ctrl-C: never leave node behind
                self._stop()
                retry = isinstance(error, PGliteError) and "EADDRINUSE" in str(error)
                if not retry or attempt == _PORT_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    def _start(self, node: str, port: int) -> None:
        """Spawn node and wait for its single ``READY <port>`` line, within the deadline."""
        self._stderr = tempfile.TemporaryFile()  # a file, not a pipe: nothing to drain
        env = {**os.environ, "PGLITE_EXIT_ON_STDIN_EOF": "1"}
        env.pop("PGLITE_PORT", None)
        self._process = subprocess.Popen(
            [node, "server.mjs", str(port)],
            cwd=self.directory,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,
        )
        self._port = self._wait_ready(self._process)
        assert self._process.stdout is not None
        self._drainer = threading.Thread(
            target=_drain, args=(self._process.stdout,), name="pglite-stdout", daemon=True
        )
        self._drainer.start()

    def _wait_ready(self, process: subprocess.Popen[bytes]) -> int:
        assert process.stdout is not None
        fd = process.stdout.fileno()
        deadline = time.monotonic() + self.start_timeout
        buffer = b""
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PGliteError(
                    f"PGlite server gave no READY line within {self.start_timeout:.0f} s"
                    f"{self._stderr_text()}"
                )
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:  # EOF: the server died before it was ready
                code = process.wait(timeout=STOP_GRACE_S)
                raise PGliteError(
                    f"PGlite server exited with {code} before it was ready{self._stderr_text()}"
                )
            buffer += chunk
        line = buffer.split(b"\n", 1)[0].decode(errors="replace").strip()
        word, _, value = line.partition(" ")
        if word != "READY" or not value.isdigit():
            raise PGliteError(f"unexpected first line from the PGlite server: {line!r}")
        return int(value)

    def _stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        with contextlib.suppress(OSError, ValueError):
            self._stderr.seek(0)
            text = self._stderr.read().decode(errors="replace").strip()
            return f"; its stderr:\n{text}" if text else "; its stderr was empty"
        return ""

    def _stop(self) -> None:
        """Stop the server by its pid: SIGTERM, up to 5 s, then SIGKILL; close every pipe."""
        process = self._process
        if process is not None:
            if process.poll() is None:  # not reaped yet, so the pid is still ours
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(process.pid, signal.SIGKILL)
                    process.wait()
        if self._drainer is not None:  # the dead server's stdout is at EOF now
            self._drainer.join(timeout=STOP_GRACE_S)
            self._drainer = None
        if process is not None:
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self._port = None
