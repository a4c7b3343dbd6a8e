"""``veille simulate``: the realistic fleet, written to files with its ground truth, or
published live over MQTT at a chosen speed.

Files are reproducible: same seed, patients, minutes and start give identical bytes, and the
start defaults to a fixed instant. Live, the run is placed so no reading is dated in the
future: it starts now in real time, and ends now when faster (or slower) than real time.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from devices import DeviceBinding
from devices.simulator import (
    FIXED_START,
    RunLog,
    RunSummary,
    Simulation,
    SimulationConfig,
    rfc3339,
    write_run,
)
from ingest import MqttEndpoint
from veille.errors import VeilleError

__all__ = ["SimulateOptions", "run_simulate", "simulation_bindings", "simulation_for"]

DEFAULT_PSEUDONYM_KEY: Final = b"veille-simulator"
ACK_TIMEOUT_S: Final = 60.0
MAX_UNACKED: Final = 20_000  # at speed 0, wait for the broker rather than queue without bound
_PACE_SLACK_S: Final = 0.002  # sleeping less than this costs more than it keeps in step


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulateOptions:
    patients: int = 20
    minutes: float = 60.0
    seed: int = 1
    speed: float = 1.0  # 1 = real time, 60 = a simulated minute per second, 0 = no waiting
    out: Path | None = None  # JSON lines; the ground truth goes next to it
    truth: Path | None = None  # default <out>.truth.json; live, written only when given
    start: datetime | None = None  # simulation time 0 (default: see the module docstring)
    broker: MqttEndpoint | None = None  # live publishing: the simulated fleet's account
    tenant: str = "chu-sim"
    pseudonym_key: bytes = DEFAULT_PSEUDONYM_KEY


def _start(options: SimulateOptions, now: datetime | None) -> datetime:
    if options.start is not None:
        start = options.start
    elif options.out is not None:
        start = FIXED_START
    else:
        now = (now or datetime.now(UTC)).replace(microsecond=0)
        start = now if options.speed == 1 else now - timedelta(minutes=options.minutes)
    if start.tzinfo is None:
        raise VeilleError(f"--start {start.isoformat()} needs a time zone, e.g. a trailing Z")
    return start.astimezone(UTC).replace(microsecond=0)


def simulation_for(options: SimulateOptions, *, now: datetime | None = None) -> Simulation:
    """The run ``options`` describe; ``now`` anchors a live run (default: the clock)."""
    if options.speed < 0:
        raise VeilleError(f"--speed must be 0 (no waiting) or more, got {options.speed:g}")
    try:
        config = SimulationConfig(
            patients=options.patients,
            minutes=options.minutes,
            seed=options.seed,
            tenant=options.tenant,
            pseudonym_key=options.pseudonym_key,
        )
    except ValueError as exc:
        raise VeilleError(f"cannot simulate that: {exc}") from exc
    return Simulation(config, start=_start(options, now))


def simulation_bindings(
    options: SimulateOptions, *, now: datetime | None = None
) -> list[tuple[DeviceBinding, str]]:
    """``(binding, device type)`` for every simulated device, bound a day before the start:
    provision them (``store.upsert_bindings``) before publishing live."""
    return simulation_for(options, now=now).bindings()


def run_simulate(options: SimulateOptions) -> int:
    simulation = simulation_for(options)
    if options.out is not None:
        files = write_run(simulation, options.out, options.truth)
        print(_describe(simulation, files.summary))
        print(f"messages in {files.messages}, ground truth in {files.truth}")
        return 0
    return _publish(simulation, options)


def _publish(simulation: Simulation, options: SimulateOptions) -> int:
    from veille.publisher import FleetPublisher

    broker = options.broker
    if broker is None:
        raise VeilleError("publishing live needs an MQTT broker (SimulateOptions.broker)")
    try:
        publisher = FleetPublisher(broker, f"veille-simulate-{options.seed}-{os.getpid()}")
    except OSError as exc:
        raise VeilleError(
            f"cannot reach the MQTT broker at {broker.describe()} ({exc}); start it with "
            "`veille stack up`"
        ) from exc
    log = RunLog(simulation.fleet)
    started = time.monotonic()
    try:
        for d in simulation.deliveries():
            if options.speed > 0:
                due = started + (d.send_at_us - simulation.start_us) / 1e6 / options.speed
                wait = due - time.monotonic()
                if wait > _PACE_SLACK_S:
                    time.sleep(wait)
            publisher.wait_pending_at_most(MAX_UNACKED)
            publisher.publish(d.topic, d.payload, d.readings)
            log.record(d)
        unacked = publisher.wait_pending_at_most(0, ACK_TIMEOUT_S)
    finally:
        publisher.close()
    if options.truth is not None:
        log.write_truth(options.truth)
    print(_describe(simulation, log.summary))
    if unacked:
        print(f"{unacked} messages were not acknowledged by the broker within {ACK_TIMEOUT_S:g} s")
        return 1
    where = f"; ground truth in {options.truth}" if options.truth else ""
    print(f"published to {broker.describe()}, every message acknowledged{where}")
    return 0


def _describe(simulation: Simulation, summary: RunSummary) -> str:
    fleet = simulation.fleet
    return (
        f"{len(fleet.patients)} patients, {len(fleet.devices)} devices, "
        f"{simulation.config.minutes:g} min from {rfc3339(simulation.start_us)}: "
        f"{summary.messages:,} messages, {summary.readings:,} readings "
        f"({summary.duplicates} duplicates, {summary.out_of_order} out of order), "
        f"{len(fleet.events)} clinical events"
    )
