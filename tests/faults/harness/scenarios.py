"""The faults, and one run of a scenario from a fresh stack to the final count.

A run: fresh stack and pipeline, provision the devices, start publishing, wait until the
first reading is stored (the whole path works), let the stream run, inject the fault while
the devices keep publishing, let the stream run again, stop the devices and wait for every
PUBACK, wait until the database accounts for every published reading (or the deadline),
stop the components with SIGTERM (timing their drain), count.

Pauses here are the fault schedule (how long a broker stays stopped), never a wait for a
result: results are waited for with deadlines.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg

from streams.runtime import APP_IDS, SINK_ALERTS_GROUP_ID, SINK_GROUP_ID
from tests.support.devices import provision
from veille.publisher import simulator_endpoint
from veille.stack import ComponentProcess

from .bench import FaultBench
from .devices import DeviceStream, PublishedSet, StreamShape, make_devices
from .forensics import trace_missed_alerts, trace_missing
from .groups import wait_spread
from .ledger import (
    RunCount,
    Stored,
    count_run,
    episodes_alerted,
    read_alert_ids,
    read_stored,
    settled,
)

WORKER_READY = "[^Worker]: Ready"
ALERTS_SETTLE_S = 60.0  # after the readings settled: alerts follow within a second or two
DRAIN_LIMIT_S = 15.0  # SIGTERM to exit, per component; ComponentProcess kills after 20 s
SPREAD_TIMEOUT_S = 60.0  # members joining under load: Faust starts, then one or two rebalances


@dataclass(frozen=True, slots=True)
class Profile:
    """How long and how hard: ``short`` runs inside ``make test``, ``full`` in ``make faults``."""

    name: str
    shape: StreamShape
    lead_s: float  # stream running before the fault
    tail_s: float  # stream running after it
    database_outage_s: float
    kafka_stall_s: float
    gateway_stall_s: float
    rebalance_cycles: int
    failover_gap_s: float  # how long a dead gateway's session waits for its replacement
    settle_timeout_s: float


# Short: every scenario once in about 6 minutes on 2 cores (inside make test); a failing run
# gives up a minute after the devices stop, which also covers the sink's 10 s retry backoff.
SHORT = Profile(
    "short", StreamShape(devices=4, readings_per_message=5, rounds_per_s=8),
    lead_s=2, tail_s=2, database_outage_s=8, kafka_stall_s=5, gateway_stall_s=5,
    rebalance_cycles=1, failover_gap_s=2, settle_timeout_s=60,
)  # fmt: skip
FULL = Profile(
    "full", StreamShape(devices=10, readings_per_message=5, rounds_per_s=20),
    lead_s=5, tail_s=5, database_outage_s=60, kafka_stall_s=30, gateway_stall_s=30,
    rebalance_cycles=4, failover_gap_s=5, settle_timeout_s=300,
)  # fmt: skip


Inject = Callable[[FaultBench, Profile], list[str]]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    inject: Inject
    gateways: tuple[str, ...] = ("gw-1",)
    subscription: str = "plain"  # shared when several gateways split the stream


# -- faults -------------------------------------------------------------------------------
def _kill_and_restart(name: str) -> Inject:
    def inject(bench: FaultBench, _p: Profile) -> list[str]:
        bench.components[name].kill()
        bench.restart(name)
        return [f"{name} killed (SIGKILL) and restarted"]

    return inject


def _rebalance(first: str, role: str) -> Inject:
    """A second worker of ``role`` joins the group of ``first``, consumes, and leaves."""
    second = f"{first}-2"

    def inject(bench: FaultBench, profile: Profile) -> list[str]:
        for cycle in range(profile.rebalance_cycles):
            joined = bench.log_size(second) if cycle else 0
            mark = bench.log_size(first)
            if cycle == 0:
                bench.add("worker", second, VEILLE_WORKER_ROLE=role)
            else:
                bench.restart(second)
            bench.wait_log(second, WORKER_READY, after=joined)
            # The first worker gives partitions away: wait until its side completed.
            bench.wait_log(first, "Setting newly assigned partitions", after=mark)
            time.sleep(profile.lead_s)  # both workers consuming
            mark = bench.log_size(first)
            code = bench.components[second].stop()
            if code != 0:
                raise RuntimeError(f"{second} exited with {code} on SIGTERM")
            bench.wait_log(first, "Setting newly assigned partitions", after=mark)
        return [f"{second} ({role}) joined and left {profile.rebalance_cycles} times"]

    return inject


def _scale(bench: FaultBench, profile: Profile) -> list[str]:
    """Under load: validators 1 -> 3, detectors 1 -> 2, sinks 1 -> 2, all joining at once;
    once each group's partitions are spread and everyone consumed ``lead_s``, the first
    member of each group leaves (SIGTERM, all three together). Each group must be spread
    over its members after both steps; what is not goes to ``bench.problems``."""
    groups = {g: [name] for name, gs in _GROUPS_OF.items() for g in gs}
    joining = [("worker", "worker-2", "validate"), ("worker", "worker-3", "validate"),
               ("worker", "detector-2", "detect"), ("sink", "sink-2", "")]  # fmt: skip
    for command, name, role in joining:
        bench.add(command, name, **({"VEILLE_WORKER_ROLE": role} if role else {}))
        for group in _GROUPS_OF[name.split("-")[0]]:
            groups[group].append(name)
    notes = ["validators 1 -> 3, detectors 1 -> 2, sinks 1 -> 2"]
    notes += _check_spread(bench, groups, "after scaling out")
    time.sleep(profile.lead_s)  # every member consuming
    leaving = ["worker", "detector", "sink"]
    with ThreadPoolExecutor(len(leaving)) as pool:
        exits = list(pool.map(_timed_stop, [bench.components[n] for n in leaving]))
    for name, (code, took) in zip(leaving, exits, strict=True):
        if code != 0 or took > DRAIN_LIMIT_S:
            bench.problems.append(f"{name} exit {code} after {took:.1f} s on SIGTERM")
    for members in groups.values():
        members.pop(0)
    slowest = max(took for _, took in exits)
    notes.append(f"worker, detector and sink left (SIGTERM, all out within {slowest:.1f} s): "
                 "validators 2, detectors 1, sinks 1")  # fmt: skip
    notes += _check_spread(bench, groups, "after scaling in")
    return notes


# The first member's name -> the consumer groups it belongs to (a sink has two lanes)
_GROUPS_OF = {
    "worker": (APP_IDS["validate"],),
    "detector": (APP_IDS["detect"],),
    "sink": (SINK_GROUP_ID, SINK_ALERTS_GROUP_ID),
}


def _timed_stop(component: ComponentProcess) -> tuple[int | None, float]:
    started = time.monotonic()
    code = component.stop()
    return code, time.monotonic() - started


def _check_spread(bench: FaultBench, groups: dict[str, list[str]], when: str) -> list[str]:
    """Wait for every group to be spread over its members; one note per group, problems to
    ``bench.problems``."""
    members = {g: {n: bench.components[n].log_path for n in names} for g, names in groups.items()}
    started = time.monotonic()
    spreads, problems = wait_spread(
        bench.env["VEILLE_KAFKA_BOOTSTRAP"], members, bench.stack.partitions, bench.env,
        timeout_s=SPREAD_TIMEOUT_S,
    )  # fmt: skip
    bench.problems += [f"{when}: {p}" for p in problems]
    took = time.monotonic() - started
    return [f"{when} (spread in {took:.0f} s): " + "; ".join(s.line() for s in spreads)]


def _database_outage(bench: FaultBench, profile: Profile) -> list[str]:
    bench.crash_database()
    time.sleep(profile.database_outage_s)
    report = bench.restart_dead_services()
    return [f"postgres stopped (pg_ctl -m immediate) for {profile.database_outage_s:.0f} s",
            *[line for line in report if line.startswith("postgres")]]  # fmt: skip


def _pause(pid: int, seconds: float) -> None:
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)


def _kafka_stall(bench: FaultBench, profile: Profile) -> list[str]:
    _pause(bench.service_pid("kafka"), profile.kafka_stall_s)
    return [f"Tansu stopped (SIGSTOP) for {profile.kafka_stall_s:.0f} s"]


def _gateway_stall(bench: FaultBench, profile: Profile) -> list[str]:
    pid = bench.gateway().pid
    assert pid is not None
    _pause(pid, profile.gateway_stall_s)
    return [f"gateway stopped (SIGSTOP) for {profile.gateway_stall_s:.0f} s"]


def _mqtt_restart(bench: FaultBench, _p: Profile) -> list[str]:
    bench.stop_mqtt_gracefully()
    report = bench.restart_dead_services()
    return ["mosquitto stopped with SIGTERM (persistence on) and started again",
            *[line for line in report if line.startswith("mqtt")]]  # fmt: skip


def _gateway_failover(bench: FaultBench, profile: Profile) -> list[str]:
    bench.gateway("gw-a").kill()
    time.sleep(profile.failover_gap_s)  # its unacknowledged messages wait in its session
    bench.restart("gateway-gw-a")
    return [f"gateway gw-a killed, replaced after {profile.failover_gap_s:.0f} s "
            "by a gateway with the same client id"]  # fmt: skip


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("kill-gateway", _kill_and_restart("gateway-gw-1")),
        Scenario("kill-worker", _kill_and_restart("worker")),
        Scenario("kill-detector", _kill_and_restart("detector")),
        Scenario("kill-sink", _kill_and_restart("sink")),
        Scenario("rebalance", _rebalance("worker", "validate")),
        Scenario("rebalance-detect", _rebalance("detector", "detect")),
        Scenario("scale", _scale),
        Scenario("database-outage", _database_outage),
        Scenario("kafka-stall", _kafka_stall),
        Scenario("gateway-stall", _gateway_stall),
        Scenario("mqtt-restart", _mqtt_restart),
        Scenario(
            "gateway-failover", _gateway_failover, gateways=("gw-a", "gw-b"), subscription="shared"
        ),
    )
}


# -- one run ------------------------------------------------------------------------------
async def run_scenario(
    scenario: Scenario, profile: Profile, state_dir: Path, *, keep_failed: Path | None = None
) -> RunCount:
    """One run; a failed run's component logs and loss trace are copied to ``keep_failed``."""
    # The stack's own start runs asyncio.run(): enter and leave the bench in a thread.
    started = time.monotonic()
    bench = FaultBench(state_dir, gateways=scenario.gateways, subscription=scenario.subscription)
    await asyncio.to_thread(bench.__enter__)
    try:
        result = await _run_on(bench, scenario, profile)
        result.notes.append(f"run took {time.monotonic() - started:.0f} s")
        if keep_failed is not None and not result.clean:  # a spread or exit problem too
            _keep(bench, result, keep_failed)
        return result
    finally:
        await asyncio.to_thread(bench.close)


def _keep(bench: FaultBench, result: RunCount, keep_failed: Path) -> None:
    target = keep_failed / f"{result.scenario}-{time.strftime('%Y%m%dT%H%M%S')}"
    shutil.copytree(bench.logs, target / "logs")
    (target / "result.txt").write_text("\n".join([repr(result), *result.notes]) + "\n")
    result.notes.append(f"logs kept in {target}")


async def _run_on(bench: FaultBench, scenario: Scenario, profile: Profile) -> RunCount:
    dsn = bench.env["VEILLE_DATABASE_URL"]
    devices = make_devices(profile.shape.devices)
    ids = [d.device_id for d in devices]
    await provision(dsn, *devices)
    stream = DeviceStream(simulator_endpoint(bench.env), devices, profile.shape)
    stream.start()
    try:
        await _until(lambda: _any_stored(dsn, ids), what="first reading stored", timeout_s=120)
        await asyncio.sleep(profile.lead_s)
        notes = await asyncio.to_thread(scenario.inject, bench, profile)
        await asyncio.sleep(profile.tail_s)
    finally:
        published = await asyncio.to_thread(stream.finish)
    if await _settle(dsn, ids, published, profile.settle_timeout_s) is None:
        notes.append(f"not settled within {profile.settle_timeout_s:.0f} s")
        dumped = await asyncio.to_thread(bench.dump_worker_tasks)
        notes.append(f"tasks of {', '.join(dumped) or 'no worker'} dumped into their logs")
    patients = [d.patient for d in devices]
    if not await _alerts_settle(dsn, patients, published, ALERTS_SETTLE_S):
        notes.append(f"alerts not settled within {ALERTS_SETTLE_S:.0f} s")
    drain = await asyncio.to_thread(_drain, bench)
    notes += _redeliveries(bench)
    stored = await read_stored(dsn, ids)  # after the drain: anything it flushed counts
    alert_ids = await read_alert_ids(dsn, patients)
    result = count_run(scenario.name, published, stored, alert_ids)
    if result.missing:  # before the bench closes: Tansu's topics live in its memory
        try:
            notes += await trace_missing(bench.env, result.missing)
        except Exception as exc:  # the count stands without the trace: report, do not hide it
            notes.append(f"loss trace failed: {exc!r}")
    if result.missed_episodes:
        try:
            notes += await trace_missed_alerts(bench.env, result.missed_episodes)
        except Exception as exc:
            notes.append(f"alert trace failed: {exc!r}")
    return replace(
        result, notes=notes + result.notes, drain_problems=drain, problems=list(bench.problems)
    )


async def _any_stored(dsn: str, ids: list[str]) -> bool:
    stored = await read_stored(dsn, ids[:1])
    return bool(stored.readings)


async def _settle(
    dsn: str, ids: list[str], published: PublishedSet, timeout_s: float
) -> Stored | None:
    """Until the database accounts for every published reading, or the deadline: the count
    that follows then names what is missing."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            stored = await read_stored(dsn, ids)
        except psycopg.OperationalError:
            stored = None
        if stored is not None and settled(published, stored):
            return stored
        await asyncio.sleep(0.5)
    return None


async def _alerts_settle(
    dsn: str, patients: list[str], published: PublishedSet, timeout_s: float
) -> bool:
    """Until every acknowledged episode's alert is in the database, or the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            _, missed, _ = episodes_alerted(published, await read_alert_ids(dsn, patients))
            if missed == 0:
                return True
        except psycopg.OperationalError:
            pass
        await asyncio.sleep(0.5)
    return False


async def _until(probe: Callable[[], Awaitable[bool]], *, what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await probe():
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{what}: not reached within {timeout_s:.0f} s")


def _drain(bench: FaultBench) -> list[str]:
    """SIGTERM every component, gateways first; each must exit 0 within DRAIN_LIMIT_S."""
    order = sorted(bench.components.values(), key=lambda c: (
        "gateway", "worker", "detector", "sink").index(c.name.split("-")[0]))  # fmt: skip
    slow = []
    for component in order:
        if not component.alive():
            continue
        started = time.monotonic()
        code = component.stop()
        took = time.monotonic() - started
        if code != 0 or took > DRAIN_LIMIT_S:
            slow.append(f"{component.name} exit {code} after {took:.1f} s")
    return slow


_COUNTERS = re.compile(r"gateway stopped: GatewayCounters\(received=(\d+), redelivered=(\d+)")


def _redeliveries(bench: FaultBench) -> list[str]:
    out = []
    for name, component in bench.components.items():
        if name.startswith("gateway-"):
            found = _COUNTERS.findall(component.log_tail(200_000))
            if found:
                received, redelivered = found[-1]
                out.append(f"{name}: {redelivered} redelivered (DUP) of {received} received")
    return out
