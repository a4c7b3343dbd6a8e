"""Start detached service processes and stop exactly those, by PID.

A PID is only trusted together with its start time (``/proc/PID/stat`` field 22), so a
recycled PID is never signalled by mistake.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ProcessHandle", "free_port", "port_open", "spawn", "stop", "wait_until"]

_SETPRIV = "setpriv"  # util-linux, in every Debian base system


@dataclass(frozen=True, slots=True)
class ProcessHandle:
    pid: int
    start_ticks: int

    def to_json(self) -> dict[str, int]:
        return {"pid": self.pid, "start_ticks": self.start_ticks}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ProcessHandle:
        return cls(int(obj["pid"]), int(obj["start_ticks"]))

    def alive(self) -> bool:
        """True when the process still runs and is the one we started (not a zombie)."""
        try:
            os.waitpid(self.pid, os.WNOHANG)  # reap it if it is our dead child
        except ChildProcessError:
            pass
        stat = _stat(self.pid)
        return stat is not None and stat[0] != "Z" and stat[1] == self.start_ticks


def _stat(pid: int) -> tuple[str, int] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])  # state, starttime (fields 3 and 22 of the line)


def spawn(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: dict[str, str] | None = None,
    user: str | None = None,
) -> ProcessHandle:
    """Start ``argv`` in its own session (it outlives the CLI), output appended to ``log_path``.

    ``posix_spawn`` rather than ``subprocess.Popen``: a service is not our child to wait for,
    and a dropped Popen object would complain that it is still running. ``setpriv`` switches
    user and then execs, so the PID we record is the service's own.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = list(argv)
    if user:
        command = [_SETPRIV, f"--reuid={user}", f"--regid={user}", "--clear-groups", "--", *command]
    executable = shutil.which(command[0]) or command[0]
    # Owner only: PostgreSQL's log holds pgaudit's lines, the SQL operators typed.
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)  # a log from before this rule keeps no wider mode
    try:
        pid = os.posix_spawn(
            executable,
            command,
            os.environ if env is None else env,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, fd, 1),
                (os.POSIX_SPAWN_DUP2, fd, 2),
            ],
            setsid=True,
        )
    finally:
        os.close(fd)
    stat = _stat(pid)
    return ProcessHandle(pid, stat[1] if stat else 0)


def stop(handle: ProcessHandle, *, sig: int = signal.SIGTERM, grace_s: float = 10.0) -> bool:
    """Signal the process, wait up to ``grace_s``, then SIGKILL. False if it was not running."""
    if not handle.alive():
        return False
    os.kill(handle.pid, sig)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not handle.alive():
            return True
        time.sleep(0.05)
    os.kill(handle.pid, signal.SIGKILL)
    while handle.alive():
        time.sleep(0.05)
    return True


# Ports handed out by this process: two calls before either port is bound must differ. A
# set only ever added to, a few dozen entries per stack: the one module-level state here.
_HANDED_OUT: set[int] = set()
_LISTEN_RANGE_SIZE = 12_000


def _ephemeral_low() -> int:
    """The first port the kernel gives outgoing connections (Linux; 32768 elsewhere)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port free now and outside the kernel's ephemeral range, for a process started later.

    The kernel's port 0 is ephemeral: between this call and the child's bind, any outgoing
    connection on the machine could take it (a detector of the fault suite died at start:
    "address already in use" on the metrics port it was given). Below that range only
    listeners compete, and they are checked by binding."""
    low = _ephemeral_low()
    first = max(1024, low - _LISTEN_RANGE_SIZE)
    for _ in range(500):
        port = random.randrange(first, low)  # noqa: S311 - a port number, not a secret
        if port not in _HANDED_OUT and _bindable(port):
            _HANDED_OUT.add(port)
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # a crowded range
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(check: Any, *, timeout_s: float, what: str, step_s: float = 0.05) -> None:
    """Poll ``check()`` until true; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(step_s)
    raise TimeoutError(f"{what} not ready after {timeout_s:.0f} s")
