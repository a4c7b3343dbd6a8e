"""CPU time of running processes, read from /proc: which process spends what per reading.

Throughput alone cannot say where the cores go when every server shares two of them; CPU
seconds per process over a run, divided by the readings it carried, can.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cpu_seconds", "memory_kib", "own_cpu_seconds"]

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def _fields(pid: int) -> list[str] | None:
    """Fields 3 onwards of /proc/PID/stat (after the command name, which may hold spaces)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def _ticks(fields: list[str]) -> int:
    # utime, stime, cutime, cstime are fields 14 to 17; cutime/cstime hold reaped children.
    return sum(int(f) for f in fields[11:15])


def cpu_seconds(pid: int, *, with_children: bool = False) -> float:
    """User + system CPU of ``pid`` and its reaped children; ``with_children`` adds the live
    children too (PostgreSQL's backends are children of the postmaster)."""
    own = _fields(pid)
    if own is None:
        return 0.0
    ticks = _ticks(own)
    if with_children:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            fields = _fields(int(entry.name))
            if fields is not None and int(fields[1]) == pid:
                ticks += _ticks(fields)
    return ticks / _TICKS_PER_S


def own_cpu_seconds() -> float:
    """This process, all threads (the publisher's paho thread included), not its children."""
    t = os.times()
    return t.user + t.system


def memory_kib(pid: int) -> tuple[int, int] | None:
    """``(resident now, peak resident)`` of ``pid`` in KiB (VmRSS, VmHWM), None once gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    values = {}
    for line in status.splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    if len(values) < 2:
        return None
    return values["VmRSS"], values["VmHWM"]
