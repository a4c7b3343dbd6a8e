"""``veille worker --role all`` runs one child per role, forwards SIGTERM, and stops the pair
when one of them exits (with that one's status)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from veille import _both_roles as both_roles
from veille._both_roles import run_both_roles
from veille.settings import Settings

# A stand-in for `veille worker --role R`: notes its role, web port and data dir, then waits
# for SIGTERM (exit 0), or exits with 3 once both run when its role is VEILLE_TEST_FAILING_ROLE.
CHILD = """
import os, signal, sys, time
from pathlib import Path
role = sys.argv[sys.argv.index("--role") + 1]
out = Path(os.environ["VEILLE_TEST_DIR"])
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # before the marker the test waits for
(out / role).write_text(" ".join([os.environ["VEILLE_WORKER_ROLE"],
    os.environ["VEILLE_WORKER_WEB_PORT"], os.environ["VEILLE_WORKER_DATA_DIR"]]))
if os.environ.get("VEILLE_TEST_FAILING_ROLE") == role:
    while len(list(out.iterdir())) < 2:  # fail once the other role runs
        time.sleep(0.02)
    sys.exit(3)
signal.pause()
"""


def _settings(tmp_path: Path) -> Settings:
    return Settings(worker_web_port=7100, worker_data_dir=str(tmp_path / "faust"))


def _terminate_when_started(tmp_path: Path) -> threading.Thread:
    def send() -> None:
        started = threading.Event()
        while not started.wait(0.05):
            if (tmp_path / "validate").exists() and (tmp_path / "detect").exists():
                started.set()
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


@pytest.mark.timeout(60)
def test_both_roles_start_with_their_own_port_and_stop_on_sigterm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VEILLE_TEST_DIR", str(tmp_path))
    sender = _terminate_when_started(tmp_path)

    code = run_both_roles(_settings(tmp_path), [sys.executable, "-c", CHILD])

    sender.join(5)
    assert code == 0
    assert (tmp_path / "validate").read_text() == f"validate 7100 {tmp_path / 'faust' / 'validate'}"
    assert (tmp_path / "detect").read_text() == f"detect 7101 {tmp_path / 'faust' / 'detect'}"
    assert signal.getsignal(signal.SIGTERM) is not None  # the previous handler is back


@pytest.mark.timeout(60)
def test_a_failing_role_stops_the_other_and_gives_its_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VEILLE_TEST_DIR", str(tmp_path))
    monkeypatch.setenv("VEILLE_TEST_FAILING_ROLE", "detect")

    code = run_both_roles(_settings(tmp_path), [sys.executable, "-c", CHILD])

    assert code == 3  # and the validator, which only stops on SIGTERM, has been stopped


@pytest.mark.timeout(60)
def test_a_sigterm_while_the_children_start_stops_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The handler is in place before the first child starts: a SIGTERM right after it no
    longer kills the supervisor (default action) and leaves the children running."""
    monkeypatch.setenv("VEILLE_TEST_DIR", str(tmp_path))
    started: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def popen_then_sigterm(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        child: subprocess.Popen[bytes] = real_popen(*args, **kwargs)
        started.append(child)
        if len(started) == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # between the first and the second child
        return child

    missed: list[int] = []

    def not_the_supervisors(signum: int, _frame: FrameType | None) -> None:
        missed.append(signum)  # the supervisor's handler was not in place yet
        for child in started:
            child.terminate()

    monkeypatch.setattr(both_roles.subprocess, "Popen", popen_then_sigterm)
    previous = signal.signal(signal.SIGTERM, not_the_supervisors)
    try:
        code = run_both_roles(_settings(tmp_path), [sys.executable, "-c", CHILD])
    finally:
        signal.signal(signal.SIGTERM, previous)

    assert missed == []
    assert len(started) == 2
    assert all(child.poll() is not None for child in started)  # none left running
    assert code in (0, -signal.SIGTERM)  # stopped on request, before or after its handler
