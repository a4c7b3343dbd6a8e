"""Gateway, worker, sink and clinic as child processes: for the demo, the benchmark and the tests.

Children get their own process group (a Ctrl-C in the terminal reaches only the demo, which
then drains and stops them in order) and die with their parent (PR_SET_PDEATHSIG), so an
interrupted demo or test run never leaves a component behind.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ._process import free_port

__all__ = [
    "ComponentProcess",
    "PipelineProcesses",
    "clinic_component",
    "component_env",
    "wait_for_file",
    "wait_for_http",
]

_PR_SET_PDEATHSIG = 1
STOP_GRACE_S = 20.0


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _own_faust(state_dir: Path, name: str) -> dict[str, str]:
    """A second Faust worker on one machine needs its own web port and state directory."""
    return {
        "VEILLE_WORKER_DATA_DIR": str(state_dir / f"faust-{name}"),
        "VEILLE_WORKER_WEB_PORT": str(free_port()),
    }


def component_env(stack_env: Mapping[str, str], state_dir: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, **stack_env, **extra}
    env.setdefault("VEILLE_WORKER_DATA_DIR", str(state_dir / "faust"))
    env.setdefault("VEILLE_WORKER_WEB_PORT", str(free_port()))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


@dataclass
class ComponentProcess:
    """One ``veille <command>`` child process with its log file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def veille(
        cls, command: str, *args: str, env: dict[str, str], log_dir: Path, name: str | None = None
    ) -> ComponentProcess:
        """``veille <command>``; the child gets a free metrics port of its own, since several
        components share this host (``metrics_url`` is its endpoint)."""
        name = name or command
        env = {**env, "VEILLE_METRICS_PORT": str(free_port())}
        return cls(
            name, [sys.executable, "-m", "veille", command, *args], env, log_dir / f"{name}.log"
        )

    @property
    def metrics_port(self) -> int | None:
        port = int(self.env.get("VEILLE_METRICS_PORT", "0"))
        return port or None

    def metrics_url(self, route: str = "/metrics") -> str:
        """The component's telemetry endpoint (``/metrics``, ``/healthz`` or ``/readyz``)."""
        if self.metrics_port is None:
            raise RuntimeError(f"{self.name} serves no metrics (VEILLE_METRICS_PORT=0)")
        host = self.env.get("VEILLE_METRICS_HOST", "127.0.0.1")
        return f"http://{host}:{self.metrics_port}{route}"

    def start(self) -> ComponentProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                process_group=0,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - started before any thread
            )
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]

    def signal(self, sig: int) -> None:
        if self.alive() and self.proc is not None:
            self.proc.send_signal(sig)

    def stop(self, *, grace_s: float = STOP_GRACE_S) -> int | None:
        """SIGTERM, wait, then SIGKILL; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def wait_for_file(path: Path, *, timeout_s: float, watch: ComponentProcess) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            return
        if not watch.alive():
            raise RuntimeError(f"{watch.name} exited while starting:\n{watch.log_tail()}")
        time.sleep(0.05)
    raise TimeoutError(f"{watch.name} not ready after {timeout_s:.0f} s:\n{watch.log_tail()}")


def clinic_component(
    env: dict[str, str], log_dir: Path, *, port: int, host: str = "127.0.0.1"
) -> ComponentProcess:
    """``veille clinic``: the clinicians' API and pages on ``host:port``."""
    return ComponentProcess.veille(
        "clinic", "--host", host, "--port", str(port), env=env, log_dir=log_dir
    )


def wait_for_http(url: str, *, timeout_s: float, watch: ComponentProcess) -> None:
    """Until ``url`` answers 200 (a health route), or fail with the component's log."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not watch.alive():
            raise RuntimeError(f"{watch.name} exited while starting:\n{watch.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own URL
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{watch.name} not ready after {timeout_s:.0f} s:\n{watch.log_tail()}")


@dataclass
class PipelineProcesses:
    """Sink, worker and gateway of one local stack, started in that order and stopped in the
    reverse one, so nothing is consumed before something downstream can take it."""

    components: list[ComponentProcess]
    ready_file: Path

    @classmethod
    def for_stack(cls, stack_env: Mapping[str, str], state_dir: Path) -> PipelineProcesses:
        env = component_env(stack_env, state_dir)
        ready = state_dir / "run" / "gateway.ready"
        log_dir = state_dir / "logs"
        return cls(
            [
                ComponentProcess.veille("sink", env=env, log_dir=log_dir),
                ComponentProcess.veille("worker", env={**env, "VEILLE_WORKER_ROLE": "detect"},
                                        log_dir=log_dir, name="detector"),
                ComponentProcess.veille("worker", env={**env, **_own_faust(state_dir, "validator"),
                                        "VEILLE_WORKER_ROLE": "validate"}, log_dir=log_dir,
                                        name="validator"),
                ComponentProcess.veille("gateway", "--ready-file", str(ready), env=env,
                                        log_dir=log_dir),
            ],
            ready,
        )  # fmt: skip

    def start(self) -> None:
        self.ready_file.parent.mkdir(parents=True, exist_ok=True)
        self.ready_file.unlink(missing_ok=True)
        for component in self.components:
            component.start()

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Until the gateway's subscription is in place: from then on nothing published is lost."""
        wait_for_file(self.ready_file, timeout_s=timeout_s, watch=self.components[-1])

    def stop(self) -> None:
        for component in reversed(self.components):
            component.stop()

    def __enter__(self) -> PipelineProcesses:
        try:
            self.start()
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
