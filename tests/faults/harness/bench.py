"""One fault run's world: a fresh local stack and its gateway, worker and sink processes.

Every run gets its own stack (state directory, ports, topics, database) because faults kill
and stop things. Services and components are stopped by PID when the bench closes, also
when the run failed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from veille.stack import ComponentProcess, LocalStack, component_env, free_port
from veille.stack._postgres import PostgresCluster, find_pg_bindir
from veille.stack._process import ProcessHandle, stop

PARTITIONS = 4  # as the integration tests: fast group joins, same code paths
READY_TIMEOUT_S = 60.0


class FaultBench:
    """Stack up on enter, everything down (by PID) on exit."""

    def __init__(
        self,
        state_dir: Path,
        *,
        gateways: tuple[str, ...] = ("gw-1",),
        subscription: str = "plain",
    ) -> None:
        self.state_dir = state_dir
        self.stack = LocalStack(state_dir, partitions=PARTITIONS)
        self.gateway_ids = gateways
        self.subscription = subscription  # VEILLE_GATEWAY_SUBSCRIPTION: plain or shared
        self.components: dict[str, ComponentProcess] = {}
        self.env: dict[str, str] = {}
        # What a scenario's own checks found wrong (partitions not spread, ...): fails the run.
        self.problems: list[str] = []

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> FaultBench:
        try:
            self.stack.up()
            self.env = component_env(self.stack.env(), self.state_dir)
            self.add("sink")
            self.add("worker", VEILLE_WORKER_ROLE="validate")  # raw -> readings: the data path
            self.add("worker", "detector", VEILLE_WORKER_ROLE="detect")
            for gateway_id in self.gateway_ids:
                self.add_gateway(gateway_id)
            for gateway_id in self.gateway_ids:
                self.wait_gateway_ready(gateway_id)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for component in reversed(list(self.components.values())):
            component.stop()
        self.stack.down(purge=True)

    # -- components ------------------------------------------------------------------------
    def add(self, command: str, name: str | None = None, **extra_env: str) -> ComponentProcess:
        name = name or command
        env = {**self.env, **extra_env}
        if name != command and command == "worker":  # its own web port and state directory
            env["VEILLE_WORKER_WEB_PORT"] = str(free_port())
            env["VEILLE_WORKER_DATA_DIR"] = str(self.state_dir / f"faust-{name}")
        component = ComponentProcess.veille(
            command, *self._args(command, name), env=env, log_dir=self.logs, name=name
        )
        self.components[name] = component.start()
        return component

    def add_gateway(self, gateway_id: str) -> ComponentProcess:
        return self.add(
            "gateway",
            f"gateway-{gateway_id}",
            VEILLE_GATEWAY_ID=gateway_id,
            VEILLE_GATEWAY_SUBSCRIPTION=self.subscription,
        )

    def gateway(self, gateway_id: str = "gw-1") -> ComponentProcess:
        return self.components[f"gateway-{gateway_id}"]

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    def _ready_file(self, name: str) -> Path:
        return self.state_dir / "run" / f"{name}.ready"

    def _args(self, command: str, name: str) -> list[str]:
        if command != "gateway":
            return []
        ready = self._ready_file(name)
        ready.parent.mkdir(parents=True, exist_ok=True)
        ready.unlink(missing_ok=True)
        return ["--ready-file", str(ready)]

    def restart(self, name: str) -> None:
        """Start a component again under the same name (and so the same MQTT client id)."""
        component = self.components[name]
        if name.startswith("gateway-"):
            self._ready_file(name).unlink(missing_ok=True)
        component.start()
        if name.startswith("gateway-"):
            self.wait_gateway_ready(name.removeprefix("gateway-"))

    def wait_gateway_ready(self, gateway_id: str) -> None:
        name = f"gateway-{gateway_id}"
        wait_for(
            lambda: self._ready_file(name).exists(),
            what=f"{name} subscribed",
            watch=self.components[name],
        )

    def wait_log(self, name: str, text: str, *, after: int = 0, timeout_s: float = 90) -> int:
        """Until ``text`` appears in the component's log past byte ``after``; returns the log
        size then, to wait for the next occurrence."""
        component = self.components[name]

        def found() -> bool:
            return text in _read_from(component.log_path, after)

        wait_for(found, what=f"{text!r} in {name}'s log", watch=component, timeout_s=timeout_s)
        return component.log_path.stat().st_size

    def log_size(self, name: str) -> int:
        path = self.components[name].log_path
        return path.stat().st_size if path.exists() else 0

    def dump_worker_tasks(self) -> list[str]:
        """SIGUSR1 to each Faust worker: mode's Worker prints every thread's stack and every
        asyncio task into its log, which a kept failed run then shows (where a stage waits)."""
        dumped = []
        for name, component in self.components.items():
            if component.argv[3] == "worker" and component.alive():  # python -m veille worker
                component.signal(signal.SIGUSR1)
                dumped.append(name)
        if dumped:
            time.sleep(2.0)  # the dump runs as a task on the worker's loop
        return dumped

    # -- services --------------------------------------------------------------------------
    def service_pid(self, service: str) -> int:
        status = {s.name: s for s in self.stack.status()}[service]
        if status.pid is None or status.state != "running":
            raise RuntimeError(f"{service} is not running ({status.line()})")
        return status.pid

    def crash_database(self) -> None:
        """``pg_ctl stop -m immediate``: no shutdown checkpoint, crash recovery on restart."""
        cluster = PostgresCluster.for_state_dir(self.stack.state_dir)
        pid = self.service_pid("postgres")
        command = [str(find_pg_bindir() / "pg_ctl"), "stop", "-D", str(cluster.data_dir),
                   "-m", "immediate", "-w"]  # fmt: skip
        if cluster.user:
            command = ["runuser", "-u", cluster.user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=30)
        wait_for(lambda: not _alive(pid), what="postgres gone after pg_ctl stop")

    def stop_mqtt_gracefully(self) -> None:
        state = self.stack._load()["services"]["mqtt"]
        stop(ProcessHandle.from_json(state), sig=signal.SIGTERM, grace_s=30)

    def restart_dead_services(self) -> list[str]:
        """``veille stack up``: dead services come back on their previous ports."""
        return self.stack.up()


def _alive(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _read_from(path: Path, offset: int) -> str:
    if not path.exists():
        return ""
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read().decode(errors="replace")


def wait_for(
    check: object,
    *,
    what: str,
    watch: ComponentProcess | None = None,
    timeout_s: float = READY_TIMEOUT_S,
) -> None:
    """Poll ``check()`` with a deadline; fail early when the watched process died."""
    assert callable(check)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        if watch is not None and not watch.alive():
            raise RuntimeError(f"{watch.name} exited while waiting for {what}:\n{watch.log_tail()}")
        time.sleep(0.1)
    tail = f"\n{watch.log_tail()}" if watch is not None else ""
    raise TimeoutError(f"{what}: not reached within {timeout_s:.0f} s{tail}")
