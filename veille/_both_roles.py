"""``veille worker --role all``: one process per role, never one Faust app with both.

With the validate and detect agents in one Faust app, a rebalance while the per-patient
table recovers its changelog let the worker commit past raw records it never processed
(docs/RELIABILITY.md, finding 2). So ``all`` starts ``veille worker --role validate`` and
``--role detect`` as child processes (their own Faust web ports and state directories),
forwards SIGTERM and Ctrl-C to both, and when one exits stops the other: a supervisor
(systemd, Kubernetes) then sees the failure and restarts the pair.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from veille.settings import Settings

__all__ = ["ROLES", "run_both_roles"]

log = logging.getLogger(__name__)

ROLES = ("validate", "detect")
STOP_TIMEOUT_S = 20.0


def _child_env(settings: Settings, offset: int, role: str) -> dict[str, str]:
    return {
        **os.environ,
        "VEILLE_WORKER_ROLE": role,
        "VEILLE_WORKER_WEB_PORT": str(settings.worker_web_port + offset),
        "VEILLE_WORKER_DATA_DIR": str(Path(settings.worker_data_dir) / role),
        # Each role serves its own metrics: the validator on the port, the detector next.
        "VEILLE_METRICS_PORT": str(settings.metrics_port + offset if settings.metrics_port else 0),
    }


def _stop(children: Sequence[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.error("worker pid %d did not stop within %.0f s; killing it", child.pid,
                      STOP_TIMEOUT_S)  # fmt: skip
            child.kill()
            child.wait()


def _first_to_exit(children: Sequence[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    """Block until one of ``children`` exits, and reap only that one.

    ``os.waitpid(-1)`` would reap any child of this process: in a process that has others
    (a test runner's), it took a stranger for a role and stopped the pair. A pidfd per child
    waits for ours alone; ``select`` is retried across the signals the handler forwards.
    """
    pidfds: dict[int, subprocess.Popen[bytes]] = {}
    try:
        for child in children:
            try:
                pidfds[os.pidfd_open(child.pid)] = child
            except ProcessLookupError:  # already exited and reaped (by a poll() in tell())
                child.wait()
                return child
        ready, _, _ = select.select(list(pidfds), [], [])
        first = pidfds[ready[0]]
        first.wait()
        return first
    finally:
        for fd in pidfds:
            os.close(fd)


def run_both_roles(settings: Settings, command: Sequence[str] | None = None) -> int:
    """Run a validator and a detector until one exits or a signal arrives; exit status of
    the first to exit (0 when both stopped on request). ``command`` replaces ``veille worker``
    (tests)."""
    base = list(command or [sys.executable, "-m", "veille", "worker"])
    children: list[subprocess.Popen[bytes]] = []
    requested: list[int] = []  # the stop signals received, the last one first
    told: set[int] = set()  # children already sent the last stop signal

    def forward(signum: int, _frame: FrameType | None) -> None:
        requested.insert(0, signal.SIGTERM if signum == signal.SIGINT else signum)
        told.clear()
        tell(children)

    def tell(started: Sequence[subprocess.Popen[bytes]]) -> None:
        for child in started:
            if child.pid not in told and child.poll() is None:
                child.send_signal(requested[0])
                told.add(child.pid)

    # The handler goes in before the first child starts: a SIGTERM that came in between
    # killed this process with the default action and left both children running.
    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            for offset, role in enumerate(ROLES):
                children.append(
                    subprocess.Popen(
                        [*base, "--role", role], env=_child_env(settings, offset, role)
                    )
                )
        except BaseException:
            _stop(children)  # never leave a started role running on its own
            raise
        log.info("workers started: %s", ", ".join(f"{r} pid {c.pid}" for r, c in
                                                   zip(ROLES, children, strict=True)))  # fmt: skip
        if requested:  # a stop asked for while starting reaches the children started after it
            tell(children)
        first = _first_to_exit(children)
        if first.returncode != 0:
            log.error("worker pid %d exited with %d; stopping the other", first.pid,
                      first.returncode)  # fmt: skip
        _stop(children)
        return int(first.returncode or 0)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
