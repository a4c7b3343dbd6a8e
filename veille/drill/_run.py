"""The drill: a ward live on a stack of its own, a backup, total loss, a restore, and checks.

1. A local stack in the drill's work directory (its own ports, database, repository and
   key); the demo's ward provisioned and publishing over MQTT through the whole drill, as
   devices would; optionally millions of readings preloaded first.
2. A full pgBackRest backup while the ward publishes; then, still publishing, the key of
   every stored reading saved and the WAL segment switched and archived
   (``pgbackrest check``): those readings must all come back.
3. Total loss: PostgreSQL and the Kafka broker SIGKILLed, the data directory deleted; the
   gateway, workers and sink stopped (they held connections to what is gone). Mosquitto
   keeps queueing the devices' messages for the gateway's persistent session.
4. Recovery, timed from here: ``pgbackrest restore`` to the latest archived WAL into a new
   data directory, the stack up again (WAL replayed, promoted, empty Kafka topics
   created), the pipeline started, every alert the restored database holds open resolved
   (the detectors' state went with Kafka), until the first new reading is stored.
5. Checks: no saved reading missing; no (patient, rule) with two open alerts; the alerts
   open in the database are exactly those open in the detectors' state (read from its
   changelog), after the ward has published a while longer.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import psycopg

from devices.simulator import Anomaly, Delivery, LiveRun
from store import missing_reading_keys, save_reading_keys
from streams.runtime import detector_open_alerts
from veille.backup import PgBackRest, RecoveryTarget, back_up, restore_cluster
from veille.demo import demo_ward, provision_devices, provision_identities
from veille.errors import VeilleError
from veille.publisher import FleetPublisher, simulator_endpoint
from veille.recovery import resolve_after_lost_state
from veille.settings import Settings
from veille.stack import LocalStack, PipelineProcesses, PostgresCluster

from ._preload import preload_readings
from ._report import DrillReport

__all__ = ["DrillError", "DrillOptions", "run_drill"]

TICK_S: Final = 0.2
READY_TIMEOUT_S: Final = 120.0
MARK_TO_LOSS_S: Final = 3.0  # the pipeline keeps writing after the mark, as it would
NEW_READING_TIMEOUT_S: Final = 300.0
SETTLE_TIMEOUT_S: Final = 90.0  # drain, then the database and the detectors to agree
RESTORE_MARGIN_S: Final = 180.0  # the ward's playback outlasts a slow restore

Say = Callable[[str], None]


class DrillError(VeilleError):
    """A step of the drill could not be carried out (not a failed check: see the report)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DrillOptions:
    settings: Settings
    work_dir: Path  # the drill's stack and files; must not exist
    patients: int = 12
    seed: int = 1
    before_backup_s: float = 20.0
    after_backup_s: float = 10.0
    after_restore_s: float = 20.0
    preload_readings: int = 0
    keep: bool = False  # leave the stack running and the work directory in place
    partitions: int = 12


def run_drill(options: DrillOptions, say: Say) -> DrillReport:
    if options.work_dir.exists():
        raise DrillError(
            f"{options.work_dir} exists: a drill destroys its stack's database, so it only "
            "runs in a new directory of its own"
        )
    return asyncio.run(_drill(options, say))


def _publish(publisher: FleetPublisher, deliveries: list[Delivery]) -> None:
    for d in deliveries:
        # A duplicate's readings are stored once: count them once.
        publisher.publish(d.topic, d.payload, 0 if d.anomaly is Anomaly.DUPLICATE else d.readings)


async def _feed(ward: LiveRun, publisher: FleetPublisher, stop: asyncio.Event) -> None:
    """The ward's devices publishing as time passes, whatever the drill is doing."""
    t0 = time.monotonic()
    while not stop.is_set():
        if deliveries := ward.due(time.monotonic() - t0):
            await asyncio.to_thread(_publish, publisher, deliveries)
        try:
            await asyncio.wait_for(stop.wait(), TICK_S)
        except TimeoutError:
            pass


async def _count_readings(dsn: str, devices: list[str]) -> int:
    """The ward's stored readings: by device, on the natural key's index, so polling it
    stays cheap beside ten million preloaded rows."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        row = await (
            await conn.execute(
                b"SELECT count(*) FROM readings WHERE device_id = ANY(%s)", (devices,)
            )
        ).fetchone()
    return int(row[0]) if row else 0


async def _first_new_reading(dsn: str, devices: list[str], restored: int) -> float:
    """The monotonic time at which the ward first has more than ``restored`` readings."""
    deadline = time.monotonic() + NEW_READING_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if await _count_readings(dsn, devices) > restored:
                return time.monotonic()
        except psycopg.OperationalError:
            pass
        await asyncio.sleep(0.1)
    raise DrillError(f"no new reading stored within {NEW_READING_TIMEOUT_S:.0f} s of the restore")


async def _watch(pipeline: PipelineProcesses, seconds: float) -> None:
    """Wait ``seconds``; a component that stops meanwhile ends the drill with its log."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for component in pipeline.components:
            if not component.alive():
                raise DrillError(f"{component.name} stopped unexpectedly:\n{component.log_tail()}")
        await asyncio.sleep(TICK_S)


async def _start_pipeline(stack: LocalStack) -> PipelineProcesses:
    pipeline = PipelineProcesses.for_stack(stack.env(), stack.state_dir)
    try:
        await asyncio.to_thread(pipeline.start)
        await asyncio.to_thread(pipeline.wait_ready, READY_TIMEOUT_S)
    except BaseException:
        await asyncio.to_thread(pipeline.stop)
        raise
    return pipeline


async def _settle(dsn: str, devices: list[str], publisher: FleetPublisher) -> int:
    """Until the broker acknowledged everything and the stored count holds for 3 s."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = await _count_readings(dsn, devices)
        if count != last:
            last, since = count, time.monotonic()
        elif publisher.pending() == 0 and time.monotonic() - since >= 3.0:
            break
        await asyncio.sleep(0.5)
    return last


async def _compare_alerts(dsn: str, bootstrap: str, report: DrillReport) -> None:
    """Open alerts, database against the detectors' changelog, until they agree (or the
    settle time is up: then the report names the difference)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while True:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            rows = await (
                await conn.execute(b"SELECT alert_id::text FROM alerts WHERE state <> 'resolved'")
            ).fetchall()
            dup = await (
                await conn.execute(
                    b"""SELECT count(*) FROM (SELECT 1 FROM alerts WHERE state <> 'resolved'
                        GROUP BY patient_pseudonym, rule HAVING count(*) > 1) AS d"""
                )
            ).fetchone()
        in_database = {str(r[0]) for r in rows}
        in_detectors = set(await detector_open_alerts(bootstrap))
        report.open_alerts_final = len(in_database)
        report.duplicate_open_alerts = int(dup[0]) if dup else 0
        report.open_only_in_database = sorted(in_database - in_detectors)
        report.open_only_in_detectors = sorted(in_detectors - in_database)
        agreed = not report.open_only_in_database and not report.open_only_in_detectors
        if agreed or time.monotonic() > deadline:
            return
        await asyncio.sleep(1.0)


async def _drill(o: DrillOptions, say: Say) -> DrillReport:
    report = DrillReport(patients=o.patients, preloaded_readings=o.preload_readings)
    t = report.timings
    stack = LocalStack(o.work_dir / "stack", partitions=o.partitions, topics=o.settings.topics)
    pipeline: PipelineProcesses | None = None
    publisher: FleetPublisher | None = None
    stop_feeding = asyncio.Event()
    feeder: asyncio.Task[None] | None = None
    try:
        say(f"drill stack in {stack.state_dir}")
        for line in await asyncio.to_thread(stack.up):
            say(f"  {line}")
        settings = stack.settings_for(o.settings)
        if settings.backup_database_url is None:
            raise DrillError("the drill's stack has no backup repository (pgBackRest)")
        owner = settings.backup_database_url.get_secret_value()  # superuser: restore points
        repo = PgBackRest.from_settings(settings)
        ward = demo_ward(
            patients=o.patients, seed=o.seed,
            duration_s=o.before_backup_s + o.after_backup_s + o.after_restore_s + RESTORE_MARGIN_S,
            pseudonym_key=settings.pseudonym_key.get_secret_value().encode(), now=datetime.now(UTC),
        )  # fmt: skip
        devices = [d.device_id for d in ward.simulation.fleet.devices]
        registry = settings.database_url_for("registry").get_secret_value()
        await provision_devices(registry, ward.simulation.bindings())
        await provision_identities(registry, ward.simulation.fleet)
        if o.preload_readings:
            say(f"preloading {o.preload_readings:,} readings")
            started = time.monotonic()
            await preload_readings(owner, o.preload_readings)
            t.preload_s = time.monotonic() - started
        pipeline = await _start_pipeline(stack)
        publisher = await asyncio.to_thread(
            FleetPublisher, simulator_endpoint(settings), f"veille-drill-fleet-{o.seed}"
        )
        feeder = asyncio.create_task(_feed(ward, publisher, stop_feeding))
        say(f"ward of {o.patients} patients publishing; backup in {o.before_backup_s:g} s")
        await _watch(pipeline, o.before_backup_s)

        started = time.monotonic()
        summary, _ = await back_up(repo, owner, o.work_dir / "backups", kind="full")
        t.backup_s = time.monotonic() - started
        report.database_bytes, report.repository_bytes = (
            summary.database_bytes, summary.repository_bytes,
        )  # fmt: skip
        say(f"backup {summary.label}: {t.backup_s:.1f} s")
        await _watch(pipeline, o.after_backup_s)

        keys = o.work_dir / "reading-keys.tsv"
        report.readings_at_mark = await save_reading_keys(owner, keys)
        await repo.run("check")  # switches the WAL segment and waits until it is archived
        say(f"{report.readings_at_mark:,} readings stored and archived; losing everything")
        await _watch(pipeline, MARK_TO_LOSS_S)
        report.readings_at_loss = await _count_readings(owner, devices)

        cluster = PostgresCluster.for_state_dir(stack.state_dir)
        for service in ("postgres", "kafka"):
            say(f"  {service}: SIGKILL pid {stack.crash(service)}")
        shutil.rmtree(cluster.data_dir)
        say(f"  {cluster.data_dir} deleted; Kafka's records gone with its process")
        await asyncio.to_thread(pipeline.stop)
        pipeline = None

        restore_started = time.monotonic()
        await restore_cluster(
            repo, cluster.data_dir, target=RecoveryTarget.latest(), replaces_source=True
        )
        t.restore_files_s = time.monotonic() - restore_started
        say(f"restored the data directory in {t.restore_files_s:.1f} s; recovering")
        for line in await asyncio.to_thread(stack.up):
            say(f"  {line}")
        t.recovery_and_services_s = time.monotonic() - restore_started - t.restore_files_s
        report.readings_restored = await _count_readings(owner, devices)
        first_new = asyncio.create_task(
            _first_new_reading(owner, devices, report.readings_restored)
        )
        step = time.monotonic()
        pipeline = await _start_pipeline(stack)
        t.pipeline_ready_s = time.monotonic() - step
        step = time.monotonic()
        report.orphans_resolved, unrecorded = await resolve_after_lost_state(
            settings, timeout_s=READY_TIMEOUT_S
        )
        if unrecorded:
            raise DrillError(f"{unrecorded} resolved orphan alerts not recorded by the sink")
        t.reconcile_alerts_s = time.monotonic() - step
        t.restore_to_new_readings_s = await first_new - restore_started
        say(f"new readings stored {t.restore_to_new_readings_s:.1f} s after the restore began")

        await _watch(pipeline, o.after_restore_s)
        stop_feeding.set()
        await feeder
        report.readings_final = await _settle(owner, devices, publisher)
        report.readings_acked_by_broker = publisher.counters.readings_acked
        report.missing_after_restore = await missing_reading_keys(owner, keys)
        await _compare_alerts(owner, settings.kafka_bootstrap, report)
    finally:
        stop_feeding.set()
        if feeder is not None:
            await asyncio.gather(feeder, return_exceptions=True)
        if publisher is not None:
            await asyncio.to_thread(publisher.close)
        if pipeline is not None:
            await asyncio.to_thread(pipeline.stop)
        if not o.keep:
            await asyncio.to_thread(stack.down, purge=True)
            shutil.rmtree(o.work_dir, ignore_errors=True)
    return report
