"""py-spy samples of the Veille processes while the pipeline runs at its sustained rate.

py-spy (PyPI ``py-spy``) reads a running interpreter's stacks from outside (``--nonblocking``:
without pausing it), so the profile costs the profiled process nothing. Reported per process:
the frames that were on top of the stack most often, as shares of the samples in which the
process was busy; waits in the event loop's or paho's ``select`` are counted apart as idle.
"""

from __future__ import annotations

import asyncio
import collections
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Profile", "profile_processes"]

RATE_HZ = 100
TOP = 8
_IDLE = ("select (selectors.py", "Client._loop (paho/mqtt/client.py:1667)", "wait (threading.py")


@dataclass(frozen=True, slots=True)
class Profile:
    process: str
    samples: int
    idle_share: float
    top: list[tuple[str, float]]  # frame, share of the busy samples


def _py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def _summary(process: str, folded: str) -> Profile:
    leaves: collections.Counter[str] = collections.Counter()
    total = idle = 0
    for line in folded.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        leaf = stack.rsplit(";", 1)[-1].strip()
        total += n
        if any(leaf.startswith(marker) or marker in leaf for marker in _IDLE):
            idle += n
            continue
        leaves[leaf] += n
    busy = max(total - idle, 1)
    return Profile(
        process, total, idle / max(total, 1), [(f, n / busy) for f, n in leaves.most_common(TOP)]
    )


async def profile_processes(
    pids: dict[str, int], *, delay_s: float, seconds: float
) -> list[Profile]:
    """Sample every process of ``pids`` at once for ``seconds``, after ``delay_s``.
    Returns nothing when py-spy is not installed (the report says so)."""
    binary = _py_spy()
    if binary is None:
        return []
    await asyncio.sleep(delay_s)
    with tempfile.TemporaryDirectory(prefix="veille-py-spy-") as work:
        runs = {}
        for name, pid in pids.items():
            out = Path(work) / f"{name}.txt"
            runs[name] = (out, await asyncio.create_subprocess_exec(
                binary, "record", "--pid", str(pid), "--duration", str(int(seconds)),
                "--rate", str(RATE_HZ), "--format", "raw", "--output", str(out),
                "--nonblocking", stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            ))  # fmt: skip
        profiles = []
        for name, (out, process) in runs.items():
            await process.wait()
            if out.exists():
                profiles.append(_summary(name, out.read_text()))
    return profiles
