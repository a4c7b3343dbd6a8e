"""``veille stack up --gateways N --validators N --detectors N --sinks N``: the pipeline's
components as processes of the local stack, beside its services.

Each member is ``python -m veille <command>`` in a session of its own (it outlives
``stack up``, like the services), with its log in ``logs/<name>.log``, its own metrics port
(``VEILLE_METRICS_PORT``), a Faust worker its own web port and data directory, a gateway its
own id (``gw-1``, ``gw-2``, ...; ``VEILLE_GATEWAY_SUBSCRIPTION=shared`` when there are
several, ``plain`` for one). Members are recorded in ``components.json`` of the state
directory, by PID and start time, so ``stack status`` lists them and ``stack down`` stops
them (SIGTERM to the process group, SIGKILL after :data:`STOP_GRACE_S`).

``up`` converges: a missing member starts, a dead one starts again (on its ports when they
are free), a running one whose plan changed (its gateway subscription, when the number of
gateways crosses one) restarts, and members beyond the count stop, highest index first.
Members start downstream first (sinks, detectors, validators, gateways) and stop in the
reverse order, so nothing is consumed before something downstream can take it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from veille.errors import StackError

from ._components import component_env
from ._process import ProcessHandle, free_port, port_open, spawn
from ._prometheus import register_scrape_target, remove_scrape_target
from ._stack import ServiceStatus

__all__ = [
    "ComponentKind",
    "LocalTopology",
    "PlannedComponent",
    "Topology",
    "plan_topology",
]

ComponentKind = Literal["gateway", "validator", "detector", "sink"]
KINDS: tuple[ComponentKind, ...] = get_args(ComponentKind)
START_ORDER: tuple[ComponentKind, ...] = ("sink", "detector", "validator", "gateway")
STATE_FILE = "components.json"  # in the state directory, beside stack.json
STOP_GRACE_S = 20.0  # as ComponentProcess: a worker drains what it holds before it exits
READY_TIMEOUT_S = 90.0  # six members start in ~5 s on two idle cores; room for a busy host
PORT_VARIABLES = ("VEILLE_METRICS_PORT", "VEILLE_WORKER_WEB_PORT")
_COMMANDS: dict[ComponentKind, tuple[str, ...]] = {
    "gateway": ("gateway",),
    "validator": ("worker", "--role", "validate"),
    "detector": ("worker", "--role", "detect"),
    "sink": ("sink",),
}


@dataclass(frozen=True, slots=True)
class Topology:
    """How many of each component; 0 runs none."""

    gateways: int = 0
    validators: int = 0
    detectors: int = 0
    sinks: int = 0

    def __post_init__(self) -> None:
        for kind in KINDS:
            if self.count(kind) < 0:
                raise ValueError(f"{kind}s: {self.count(kind)}; a count is 0 or more")

    def count(self, kind: ComponentKind) -> int:
        value: int = getattr(self, f"{kind}s")
        return value

    def members(self) -> list[tuple[ComponentKind, int]]:
        """(kind, index from 1), in start order."""
        return [(kind, i) for kind in START_ORDER for i in range(1, self.count(kind) + 1)]


@dataclass(frozen=True, slots=True)
class PlannedComponent:
    """One member: its ``veille`` command and the environment that makes it distinct."""

    kind: ComponentKind
    index: int
    args: tuple[str, ...]  # after ``python -m veille``
    env: Mapping[str, str] = field(default_factory=dict)  # ids, ports, directories

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.index}"

    @property
    def job(self) -> str:
        """The Prometheus job (contract: ``veille-gateway``, ``veille-validator``, ...)."""
        return f"veille-{self.kind}"

    @property
    def metrics_address(self) -> str:
        return f"127.0.0.1:{self.env['VEILLE_METRICS_PORT']}"

    def ports(self) -> list[int]:
        return [int(self.env[v]) for v in PORT_VARIABLES if v in self.env]


class _Ports:
    """Free ports never handed out twice, nor one another member keeps."""

    def __init__(self, taken: Iterable[int], pick: Callable[[], int]) -> None:
        self.taken = set(taken)
        self.pick = pick

    def __call__(self) -> int:
        for _ in range(100):
            port = self.pick()
            if port not in self.taken:
                self.taken.add(port)
                return port
        raise StackError("no free port found in 100 tries; too many ports in use on this host")


def plan_topology(
    topology: Topology,
    state_dir: Path,
    *,
    keep: Mapping[str, Mapping[str, str]] | None = None,
    pick_port: Callable[[], int] = free_port,
) -> list[PlannedComponent]:
    """Every member of ``topology``, in start order. ``keep``: member name -> an environment
    whose ports that member keeps (running, or dead with its ports free); every other port
    is new and distinct from all of them."""
    keep = keep or {}
    state_dir = state_dir.resolve()
    ports = _Ports((int(env[v]) for env in keep.values() for v in PORT_VARIABLES if v in env),
                   pick_port)  # fmt: skip
    shared = topology.gateways > 1
    planned = []
    for kind, index in topology.members():
        name = f"{kind}-{index}"
        kept = keep.get(name, {})

        def port(variable: str, kept: Mapping[str, str] = kept) -> str:
            return kept.get(variable) or str(ports())

        env = {"VEILLE_METRICS_PORT": port("VEILLE_METRICS_PORT")}
        if kind == "gateway":
            env["VEILLE_GATEWAY_ID"] = f"gw-{index}"
            env["VEILLE_GATEWAY_SUBSCRIPTION"] = "shared" if shared else "plain"
        elif kind in ("validator", "detector"):
            env["VEILLE_WORKER_WEB_PORT"] = port("VEILLE_WORKER_WEB_PORT")
            env["VEILLE_WORKER_DATA_DIR"] = str(state_dir / f"faust-{name}")
        args = _COMMANDS[kind]
        if kind == "gateway":
            args += ("--ready-file", str(_ready_file(state_dir, name)))
        planned.append(PlannedComponent(kind, index, args, env))
    return planned


def _ready_file(state_dir: Path, name: str) -> Path:
    return state_dir / "run" / f"{name}.ready"


@dataclass(frozen=True, slots=True)
class _Record:
    """A started member, as ``components.json`` keeps it."""

    plan: PlannedComponent
    handle: ProcessHandle

    def to_json(self) -> dict[str, Any]:
        p = self.plan
        return {"kind": p.kind, "index": p.index, "args": list(p.args), "env": dict(p.env),
                **self.handle.to_json()}  # fmt: skip

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> _Record:
        plan = PlannedComponent(obj["kind"], int(obj["index"]), tuple(obj["args"]), obj["env"])
        return cls(plan, ProcessHandle.from_json(obj))


class LocalTopology:
    """The components ``stack up`` started in one state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir.resolve()

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    # -- records ---------------------------------------------------------------------------
    @property
    def _state_file(self) -> Path:
        return self.state_dir / STATE_FILE

    def _load(self) -> dict[str, _Record]:
        if not self._state_file.exists():
            return {}
        members = json.loads(self._state_file.read_text())["components"]
        return {name: _Record.from_json(obj) for name, obj in members.items()}

    def _save(self, records: Mapping[str, _Record]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"components": {n: r.to_json() for n, r in records.items()}},
                                  indent=2))  # fmt: skip
        tmp.replace(self._state_file)

    def current(self) -> Topology:
        """The counts recorded (running or not): ``stack up`` keeps a kind it is not told."""
        counts = {kind: 0 for kind in KINDS}
        for record in self._load().values():
            counts[record.plan.kind] = max(counts[record.plan.kind], record.plan.index)
        return Topology(**{f"{kind}s": n for kind, n in counts.items()})

    def status(self) -> list[ServiceStatus]:
        """One line per recorded member, in start order; ``port`` is its metrics port."""
        records = sorted(self._load().values(), key=lambda r: _start_rank(r.plan))
        return [
            ServiceStatus(
                r.plan.name,
                r.handle.pid,
                int(r.plan.env["VEILLE_METRICS_PORT"]),
                "running" if r.handle.alive() else "dead",
            )
            for r in records
        ]

    # -- lifecycle -------------------------------------------------------------------------
    def up(
        self, wanted: Topology, stack_env: Mapping[str, str], *, monitoring: bool = False
    ) -> list[str]:
        """Converge on ``wanted``; returns what was done, one line each. ``monitoring``: the
        stack's Prometheus scrapes every member (job ``veille-<kind>``)."""
        records = self._load()
        report: list[str] = []
        extra = [r for r in records.values() if r.plan.index > wanted.count(r.plan.kind)]
        for record in self._stop(extra):
            report.append(f"{record.plan.name}: stopped pid {record.handle.pid} ("
                          f"{record.plan.kind}s: {wanted.count(record.plan.kind)})")  # fmt: skip
            del records[record.plan.name]
            remove_scrape_target(self.state_dir, record.plan.job, record.plan.kind,
                                 record.plan.metrics_address)  # fmt: skip
        self._save(records)
        alive = {name for name, r in records.items() if r.handle.alive()}
        keep = {
            name: r.plan.env
            for name, r in records.items()
            if name in alive or not any(port_open(p) for p in r.plan.ports())
        }
        started: list[_Record] = []
        base_env = component_env(stack_env, self.state_dir)
        for plan in plan_topology(wanted, self.state_dir, keep=keep):
            previous = records.get(plan.name)
            if previous is not None and plan.name in alive and previous.plan == plan:
                report.append(f"{plan.name}: reusing pid {previous.handle.pid}")
                continue
            if previous is not None and plan.name in alive:
                self._stop([previous])
                why = f"restarted, {_changed(previous.plan, plan)}"
            elif previous is not None:
                why = f"pid {previous.handle.pid} had died, restarted"
            else:
                why = "started"
            if previous is not None and previous.plan.metrics_address != plan.metrics_address:
                remove_scrape_target(self.state_dir, plan.job, plan.kind,
                                     previous.plan.metrics_address)  # fmt: skip
            record = self._start(plan, base_env)
            records[plan.name] = record
            self._save(records)
            started.append(record)
            report.append(
                f"{plan.name}: {why} as pid {record.handle.pid}; metrics "
                f"http://{plan.metrics_address}/metrics, log {self.logs / plan.name}.log"
            )
        self._wait_ready(started)
        if monitoring:
            for record in records.values():
                plan = record.plan
                register_scrape_target(self.state_dir, plan.job, plan.kind, plan.metrics_address)
            if records:
                report.append(f"prometheus: scraping {len(records)} components")
        return report

    def down(self, *, purge: bool = False) -> list[str]:
        """Stop every recorded member (gateways first) and forget them; ``purge`` also
        deletes the workers' Faust directories (logs stay)."""
        records = self._load()
        running = {r.plan.name for r in self._stop(records.values())}
        report = []
        for record in sorted(records.values(), key=lambda r: _start_rank(r.plan), reverse=True):
            state = "stopped" if record.plan.name in running else "was not running"
            report.append(f"{record.plan.name}: {state} (pid {record.handle.pid})")
            remove_scrape_target(self.state_dir, record.plan.job, record.plan.kind,
                                 record.plan.metrics_address)  # fmt: skip
        self._save({})
        if purge:
            self._state_file.unlink()
            for record in records.values():
                data_dir = Path(record.plan.env.get("VEILLE_WORKER_DATA_DIR", self.state_dir))
                if data_dir.resolve().is_relative_to(self.state_dir) and data_dir != self.state_dir:
                    shutil.rmtree(data_dir, ignore_errors=True)
        return report

    # -- internals -------------------------------------------------------------------------
    def _start(self, plan: PlannedComponent, base_env: Mapping[str, str]) -> _Record:
        if plan.kind == "gateway":
            ready = _ready_file(self.state_dir, plan.name)
            ready.parent.mkdir(parents=True, exist_ok=True)
            ready.unlink(missing_ok=True)
        handle = spawn(
            [sys.executable, "-m", "veille", *plan.args],
            log_path=self.logs / f"{plan.name}.log",
            env={**base_env, **plan.env},
        )
        return _Record(plan, handle)

    def _stop(self, records: Iterable[_Record]) -> list[_Record]:
        """SIGTERM each running member's process group, one kind at a time in stop order (the
        members of a kind together), SIGKILL after STOP_GRACE_S; returns the members that
        were running."""
        done = []
        ordered = sorted(records, key=lambda r: _start_rank(r.plan), reverse=True)
        for kind in reversed(START_ORDER):
            running = [r for r in ordered if r.plan.kind == kind and r.handle.alive()]
            for record in running:
                _signal_group(record.handle, signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_S
            for record in running:
                while record.handle.alive() and time.monotonic() < deadline:
                    time.sleep(0.05)
                if record.handle.alive():
                    _signal_group(record.handle, signal.SIGKILL)
                    while record.handle.alive():
                        time.sleep(0.05)
            done += running
        return done

    def _wait_ready(self, records: list[_Record]) -> None:
        """Until every member answers ``/healthz`` and every gateway has subscribed (its ready
        file): from then on devices may publish."""
        pending = list(records)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while pending:
            for record in list(pending):
                if not record.handle.alive():
                    raise StackError(f"{record.plan.name} exited while starting; its log ends "
                                     f"with:\n{self._log_tail(record.plan)}")  # fmt: skip
                if _ready(record.plan, self.state_dir):
                    pending.remove(record)
            if pending and time.monotonic() > deadline:
                names = ", ".join(r.plan.name for r in pending)
                raise StackError(f"{names} not ready after {READY_TIMEOUT_S:.0f} s; see "
                                 f"{self.logs}/<name>.log")  # fmt: skip
            time.sleep(0.2)

    def _log_tail(self, plan: PlannedComponent, chars: int = 2000) -> str:
        log = self.logs / f"{plan.name}.log"
        return log.read_text(errors="replace")[-chars:] if log.exists() else ""


def _start_rank(plan: PlannedComponent) -> tuple[int, int]:
    return START_ORDER.index(plan.kind), plan.index


def _changed(old: PlannedComponent, new: PlannedComponent) -> str:
    keys = sorted(k for k in {*old.env, *new.env} if old.env.get(k) != new.env.get(k))
    changes = [f"{k} {old.env.get(k)} -> {new.env.get(k)}" for k in keys]
    if old.args != new.args:
        changes.append(f"arguments {' '.join(old.args)} -> {' '.join(new.args)}")
    return ", ".join(changes)


def _signal_group(handle: ProcessHandle, sig: int) -> None:
    """The member's process group: ``spawn`` made it a session leader, so group = PID."""
    try:
        os.killpg(handle.pid, sig)
    except ProcessLookupError:
        pass


def _ready(plan: PlannedComponent, state_dir: Path) -> bool:
    if plan.kind == "gateway" and not _ready_file(state_dir, plan.name).exists():
        return False
    url = f"http://{plan.metrics_address}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False
