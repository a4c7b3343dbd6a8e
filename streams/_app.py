"""The Faust app: validate (raw -> readings | dead letters) and detect (readings -> alerts).

Records are packed per partition (a gateway's burst per raw partition, a validated burst per
readings partition, docs/PAYLOADS.md) because a Faust event costs ~250 microseconds here
whatever it holds: one event carries many devices, then many patients. Values are raw bytes
encoded with orjson by our own record classes, so the wire format is ours, not Faust's.
An agent acks an event only once Kafka has confirmed all its outputs, in input order, while it
goes on with the next events (``_delivery``): Faust would commit the input's offset even after
a send finally failed. At-least-once; outputs are idempotent downstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import faust
import orjson
import psycopg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from devices import (
    AlertEvent,
    AlertEventKind,
    DeadLetter,
    KeyPartitioner,
    RawEnvelope,
    ReadingBatch,
    encode_readings_records,
    envelopes_of,
    now_us,
    read_readings_record,
)
from store import StoredOverrides, StoredRegistry
from telemetry import ComponentRegistry, WorkerMetrics, correlated
from veille.errors import ConfigurationError
from veille.settings import Settings

from ._delivery import Output, confirmed_acks
from ._detect import PatientState
from ._directory import DeviceDirectory
from ._faust_compat import install_rebalance_ack_guard, install_seek_guard
from ._fetch_wait import install_fetch_wait
from ._grouping import event_groups
from ._lifecycle import EscalationPolicy, apply_alert_event, due_escalations
from ._outbox import Outbox
from ._patient import process_readings
from ._state_writes import DeferredStates
from ._tansu_compat import install_end_offset_workaround
from ._technical_alerts import TechnicalKind, check_silence, technical_alert_event
from ._telemetry import GroupTelemetry, attach_telemetry
from ._threshold_book import ThresholdBook
from ._validate import ValidationLimits, validate_envelope

__all__ = ["APP_IDS", "build_app"]

log = logging.getLogger(__name__)

APP_IDS = {"validate": "veille-validate", "detect": "veille-detect"}
_COMPONENTS = {"validate": "validator", "detect": "detector"}  # as metrics and logs name them
CACHE_RELOAD_S = 60.0  # registry and thresholds: the safety net should a NOTIFY be missed
ESCALATION_CHECK_S = 5.0


def build_app(settings: Settings) -> faust.App:
    install_rebalance_ack_guard()
    install_seek_guard()
    install_fetch_wait(settings.worker_fetch_max_wait_ms)
    if settings.kafka_local_broker:
        install_end_offset_workaround(settings.kafka_bootstrap)
    role = settings.worker_role
    if role not in APP_IDS:
        raise ConfigurationError(
            f"VEILLE_WORKER_ROLE={role!r}: a Faust app runs one role, validate or detect; "
            "`veille worker --role all` starts one process of each"
        )
    app = faust.App(
        APP_IDS[role],
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        topic_allow_declare=True,
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_heartbeat_interval=1.0,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # Faust's default (1,200 s) let one lost produce response hold every output, and so
        # every ack and commit, for 20 minutes; ConfirmedAcks sends a failed one again.
        producer_request_timeout=settings.kafka_produce_timeout_s,
        stream_buffer_maxsize=settings.worker_stream_buffer_max,
        web_port=settings.worker_web_port,
        web_bind="127.0.0.1",
        datadir=settings.worker_data_dir,
    )
    topics = settings.topics
    raw_topic = app.topic(topics.raw, key_type=bytes, value_type=bytes)
    readings_topic = app.topic(topics.readings, key_type=bytes, value_type=bytes)
    dead_letter_topic = app.topic(topics.dead_letters, key_type=bytes, value_type=bytes)
    alerts_topic = app.topic(topics.alerts, key_type=bytes, value_type=bytes)
    dsn = settings.database_url_for("worker").get_secret_value()
    component = ComponentRegistry(_COMPONENTS[role])
    metrics = WorkerMetrics(component.registry, role)
    if role == "validate":
        limits = ValidationLimits(
            future_tolerance_us=int(settings.future_tolerance_s * 1e6),
            max_age_us=int(settings.max_age_s * 1e6),
        )
        directory = DeviceDirectory(StoredRegistry(dsn))
        attach_telemetry(
            app, settings, component, metrics, input_topics=[topics.raw],
            loaded=("device_registry_loaded", lambda: directory.loaded),
        )  # fmt: skip
        _validate_agents(
            app,
            settings.kafka_bootstrap,
            _Grouping.of(settings),
            raw_topic,
            readings_topic,
            dead_letter_topic,
            directory,
            limits,
            GroupTelemetry(metrics),
        )
    if role == "detect":
        # Keys and values are bytes we encode ourselves. Faust derives a table's changelog codec
        # from key_type/value_type and falls back to "json", which the raw app default then
        # contradicts: a restarted worker failed to decode its changelog and never recovered.
        # use_partitioner: a state is written to the changelog partition of its patient's key
        # (Kafka's partitioner, as for the readings records and the alert events), not of the
        # event being processed: a group holds events of several partitions.
        detector_state = app.Table(
            "detector-state",
            default=bytes,
            key_type=bytes,
            value_type=bytes,
            use_partitioner=True,
        )
        escalation = EscalationPolicy(after_s=settings.escalate_after_s)
        thresholds = ThresholdBook(StoredOverrides(dsn))
        attach_telemetry(
            app, settings, component, metrics, input_topics=[topics.readings],
            loaded=("thresholds_loaded", lambda: thresholds.loaded),
        )  # fmt: skip
        states = DeferredStates(detector_state, settings.detector_state_flush_ms / 1000)
        metrics.patients.set_function(lambda: float(len(states)))
        _detect_agents(
            app,
            _Grouping.of(settings),
            readings_topic,
            alerts_topic,
            states,
            thresholds,
            escalation,
            GroupTelemetry(metrics),
        )
    return app


@dataclass(frozen=True, slots=True)
class _Grouping:
    """How an agent gathers events (``_grouping``) and how many groups may await Kafka."""

    max_unconfirmed: int
    max_events: int
    within_s: float

    @classmethod
    def of(cls, settings: Settings) -> _Grouping:
        return cls(
            settings.worker_max_unconfirmed,
            settings.worker_group_max,
            settings.worker_group_ms / 1000,
        )


async def _survive_database_outage(what: str, refresh: Callable[[], Awaitable[None]]) -> None:
    """A timer's reload while the database is down: keep the cache, try at the next tick.
    Unhandled, the error would crash the Faust worker (seen in the 60 s outage runs)."""
    try:
        await refresh()
    except psycopg.Error as exc:
        log.warning("%s reload failed (%s); keeping the cached copy", what, exc)


class _FollowedCache(Protocol):
    """A cache of a database table: the device directory or the threshold book."""

    async def refresh(self) -> None: ...
    async def listen(self) -> None: ...


def _keep_in_step(app: faust.App, what: str, cache: _FollowedCache) -> None:
    """Reload ``cache`` whenever the database announces a change (its LISTEN follower), and
    every ``CACHE_RELOAD_S`` should a notification be missed."""

    @app.task
    async def follow() -> None:
        await cache.listen()

    @app.timer(CACHE_RELOAD_S, name=f"reload {what}")
    async def reload() -> None:
        await _survive_database_outage(what, cache.refresh)


async def _partition_count(bootstrap: str, topic: str) -> int:
    """How many partitions ``topic`` has, as Kafka's metadata says (not as configured): packed
    readings must land where Kafka's partitioner would put each patient's key."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        return len(await producer.partitions_for(topic))
    except KafkaError as exc:
        raise ConfigurationError(
            f"cannot read the partitions of Kafka topic {topic!r} ({exc!r}): "
            "create the topics first (`veille stack up` does it locally)"
        ) from exc
    finally:
        await producer.stop()


def _packed_readings(
    readings_topic: Any,
    partitioner: KeyPartitioner,
    batches: list[ReadingBatch],
    correlation_ids: Sequence[str] = (),
) -> list[Output]:
    """Records per readings partition (several when over the size budget): each patient's
    batches on its key's partition, in order, with the group's correlation ids."""
    by_partition: dict[int, list[ReadingBatch]] = {}
    for batch in batches:
        by_partition.setdefault(partitioner.partition_of(batch.patient), []).append(batch)
    return [
        Output(readings_topic, str(partition).encode(), record, partition)
        for partition, own in by_partition.items()
        for record in encode_readings_records(own, correlation_ids=correlation_ids)
    ]


def _validate_agents(
    app: faust.App,
    bootstrap: str,
    grouping: _Grouping,
    raw_topic: Any,
    readings_topic: Any,
    dead_letter_topic: Any,
    directory: DeviceDirectory,
    limits: ValidationLimits,
    telemetry: GroupTelemetry,
) -> None:
    """Raw envelopes -> validated reading batches (key patient) and dead letters. No table:
    a rebalance of this group has no changelog to recover."""

    @app.task
    async def load_registry() -> None:
        """First load; with the database down, ``follow_registry`` loads it on reconnect."""
        await _survive_database_outage("device registry", directory.refresh)
        if len(directory):
            log.info("device registry loaded: %d active devices", len(directory))

    _keep_in_step(app, "device registry", directory)

    def unreadable(event: Any, exc: Exception) -> Output:
        message = event.message
        origin = f"{message.topic}/{message.partition}/{message.offset}"
        log.error("raw record %s is not a gateway record (%s)", origin, exc)
        dead = DeadLetter.unreadable_record(
            stage="validate",
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            raw=event.value,
            error=exc,
        )
        return Output(dead_letter_topic, event.key or b"", dead.to_json())

    async def outputs_of(events: Sequence[Any], partitioner: KeyPartitioner) -> list[Output]:
        envelopes: list[RawEnvelope] = []
        unreadable_records: list[Output] = []
        for event in events:
            try:
                envelopes += envelopes_of(event.value)
            except (ValueError, KeyError, TypeError) as exc:
                unreadable_records.append(unreadable(event, exc))
        cids = sorted({e.correlation_id for e in envelopes if e.correlation_id})
        with correlated(",".join(cids) or None):
            return await validated(envelopes, cids, partitioner) + unreadable_records

    async def validated(
        envelopes: list[RawEnvelope], cids: list[str], partitioner: KeyPartitioner
    ) -> list[Output]:
        latest_arrival = max((m.received_at_us for e in envelopes for m in e.messages), default=0)
        await directory.refresh_if_unknown({e.device_id for e in envelopes}, latest_arrival)
        now = now_us()
        batches: list[ReadingBatch] = []
        dead_letters: list[Output] = []
        reasons: list[str] = []
        for envelope in envelopes:
            result = validate_envelope(envelope, lookup=directory, now_us=now, limits=limits)
            batches += result.batches
            dead_letters += [
                Output(dead_letter_topic, envelope.device_id.encode(), dead.to_json())
                for dead in result.dead_letters
            ]
            reasons += [dead.reason.value for dead in result.dead_letters]
        telemetry.validated(sum(len(b.metrics) for b in batches), reasons)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("validated %d devices: %d batches, %d dead letters",
                      len(envelopes), len(batches), len(dead_letters))  # fmt: skip
        return _packed_readings(readings_topic, partitioner, batches, cids) + dead_letters

    @app.agent(raw_topic)
    async def validate(stream: Any) -> None:
        await directory.wait_loaded()
        partitioner = KeyPartitioner(
            await _partition_count(bootstrap, readings_topic.get_topic_name())
        )
        manual = stream.noack()
        async with confirmed_acks(manual, grouping.max_unconfirmed) as acks:
            telemetry.watch(acks)

            async def handle(events: Sequence[Any]) -> None:
                outputs = await outputs_of(events, partitioner)
                await acks.send_group(events, outputs, telemetry.sent(events, outputs))

            async with event_groups(
                handle, max_events=grouping.max_events, within_s=grouping.within_s
            ) as groups:
                async for event in manual.events():
                    await groups.add(event)


def _detect_agents(
    app: faust.App,
    grouping: _Grouping,
    readings_topic: Any,
    alerts_topic: Any,
    states: DeferredStates,
    thresholds: ThresholdBook,
    escalation: EscalationPolicy,
    telemetry: GroupTelemetry,
) -> None:
    """Reading batches -> alert events, with each patient's state in ``states`` (the table,
    written once per interval: ``_state_writes``) and the events in the state's outbox until
    Kafka confirms them (``_outbox``)."""
    outbox = Outbox()

    _keep_in_step(app, "thresholds", thresholds)

    @app.agent(readings_topic)
    async def detect_alerts(stream: Any) -> None:
        await thresholds.wait_loaded()
        manual = stream.noack()
        async with confirmed_acks(manual, grouping.max_unconfirmed) as acks:
            telemetry.watch(acks)

            async def handle(events: Sequence[Any]) -> None:
                by_patient: dict[str, list[ReadingBatch]] = {}
                cids: list[str] = []
                for event in events:
                    record = read_readings_record(event.value)
                    cids += record.correlation_ids
                    for batch in record.batches:
                        by_patient.setdefault(batch.patient, []).append(batch)
                now = now_us()
                outputs: list[Output] = []
                sent: list[AlertEvent] = []
                for patient, batches in by_patient.items():
                    to_send = detect_for(patient.encode(), batches, now)
                    outputs += [
                        Output(alerts_topic, a.patient.encode(), a.to_json()) for a in to_send
                    ]
                    sent += to_send
                states_written = states.flushed()  # before any await: this group's states
                if sent and log.isEnabledFor(logging.DEBUG):
                    with correlated(",".join(sorted(set(cids)))):
                        log.debug("%d alert events from %d patients", len(sent), len(by_patient))
                confirmed = telemetry.sent(events, outputs, partial(outbox.confirmed, sent), sent)
                await acks.send_group(events, outputs, confirmed, before_ack=states_written)

            flushing = asyncio.ensure_future(states.flush_every_interval())
            try:
                async with event_groups(
                    handle, max_events=grouping.max_events, within_s=grouping.within_s
                ) as groups:
                    async for event in manual.events():
                        await groups.add(event)
            finally:
                flushing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await flushing
                states.flush()  # the last groups' states, before their acks are drained

    def detect_for(key: bytes, batches: list[ReadingBatch], now: int) -> list[AlertEvent]:
        """One patient's batches of an event group, on its state as ``states`` keeps it
        (decoded once per flush interval, written at its end if changed: an unchanged state
        adds nothing to the changelog); the alert events to send."""

        def detect(state: PatientState) -> list[AlertEvent]:
            alerts: list[AlertEvent] = []
            for batch in batches:
                rules = thresholds.rules_for(batch.tenant, batch.care_unit, batch.patient)
                scale = thresholds.spo2_scale_for(batch.tenant, batch.care_unit, batch.patient)
                alerts += process_readings(batch, state, rules, now_us=now, spo2_scale=scale)
            return outbox.stage(state, alerts)  # in the state before it is written

        return states.update(key, detect)

    @app.agent(alerts_topic)
    async def follow_lifecycle(stream: Any) -> None:
        """Acknowledgements, clinician resolutions and escalations change the patient's state
        (same key and partition as its readings, so the same worker owns both)."""
        async for event in stream.events():
            try:
                alert = AlertEvent.from_json(event.value)
            except (ValueError, KeyError, TypeError) as exc:
                log.error("unreadable alert event at offset %s: %s", event.message.offset, exc)
                continue
            opened = alert.kind is AlertEventKind.OPENED
            silence = opened and alert.rule == TechnicalKind.DEVICE_SILENT
            if not silence and (
                opened or (alert.kind is AlertEventKind.RESOLVED and alert.actor is None)
            ):
                continue  # the detector's own transitions, already in its state
            key = alert.patient.encode()
            stored = states[key]
            if not stored:
                continue
            state: PatientState = orjson.loads(stored)
            # A silence the timer found: record it, so the device's next message resolves it.
            changed = bool(check_silence(state, alert.at_us)) if silence else False
            if apply_alert_event(state, alert) or changed:
                states.write_now(key, orjson.dumps(state))  # this stream acks by itself

    @app.timer(ESCALATION_CHECK_S)
    async def escalate_and_watch() -> None:
        """Escalations, silent devices, and alert events recovered unconfirmed in an outbox.
        Read-only over the local table: the events sent come back through
        ``follow_lifecycle``, which records them in the state; escalations and silences are
        dated when due, so a repeat before that is the same event."""
        now = now_us()
        present: set[str] = set()
        for key, stored in states.items():
            if not stored:
                continue
            state = orjson.loads(stored)
            present |= outbox.keys_in(state)
            unsent = outbox.unsent(state)
            for alert in unsent:
                sent = await alerts_topic.send(key=key, value=alert.to_json())
                sent.add_done_callback(partial(outbox.settled, alert))
            events = due_escalations(state, now, escalation)
            events += [technical_alert_event(t) for t in check_silence(state, now)]
            for alert in events:
                await alerts_topic.send(key=key, value=alert.to_json())
            telemetry.alerts_sent([*unsent, *events])
        outbox.forget(present)
