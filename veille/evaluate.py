"""``veille evaluate``: how good are the alerts? Simulated fleet in, scored alerts out.

The simulator's messages go, in send order, through the pipeline's own pure stages: the
gateway's ``plan_forward``, ``validate_envelope`` against an in-memory registry (its clock
is the message's send time), then ``detect`` per patient with the state round-tripped
through JSON as the Faust table does. No broker, no database: the figures depend on the
detection logic only, and the same seed gives the same JSON. Alerts and the naive baseline
are scored as they come (``streams._evaluation``), so a day of 200 patients streams through
in a few minutes without keeping the readings. Method and results: docs/ALERT_QUALITY.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from devices import (
    AlertEvent,
    AlertEventKind,
    DeviceStatus,
    KeyPartitioner,
    ReadingBatch,
    RegistryEntry,
    envelopes_of,
)
from devices.simulator import DEVICE_SPECS, Simulation, SimulationConfig, ground_truth
from ingest import InboundMessage, plan_forward
from streams import (
    DEFAULT_RULES,
    GRACE_PERIOD_S,
    TECHNICAL_RULE_PREFIX,
    AlertScorer,
    NaiveBaseline,
    ObservedAlert,
    PatientState,
    ThresholdRule,
    TruthEvent,
    ValidationLimits,
    alert_reduction,
    process_readings,
    rules_by_metric,
    targets,
    validate_envelope,
)
from veille.errors import VeilleError
from veille.settings import Settings

__all__ = ["EvaluateOptions", "evaluate", "run_evaluate"]

GATEWAY_ID: Final = "evaluate"
MQTT_QOS: Final = 1  # what the devices publish with


@dataclass(frozen=True, slots=True)
class EvaluateOptions:
    seed: int
    patients: int
    hours: float
    out: Path | None = None  # also write the JSON here


class _Registry:
    """The registry as the validator sees it, built from the simulation's bindings."""

    def __init__(self, simulation: Simulation) -> None:
        self._entries = {
            b.device_id: RegistryEntry(b.device_id, device_type, b.tenant, DeviceStatus.ACTIVE, b)
            for b, device_type in simulation.bindings()
        }

    def entry_for(self, device_id: str) -> RegistryEntry | None:
        return self._entries.get(device_id)


@dataclass(frozen=True, slots=True)
class _Device:
    skew_us: int  # its clock runs this far ahead of true time (negative: behind)
    period_s: dict[str, float]  # nominal sampling period per metric


def _devices(truth: dict[str, Any]) -> dict[str, _Device]:
    devices: dict[str, _Device] = {}
    for patient in truth["patients"]:
        for d in patient["devices"]:
            spec = DEVICE_SPECS[d["device_type"]]
            devices[d["device_id"]] = _Device(
                round(float(d["clock_skew_s"]) * 1e6),
                {m.metric: float(m.period_s) for m in spec.metrics},
            )
    return devices


def _confirmation_s(
    alert: AlertEvent, state: PatientState, rule: ThresholdRule | None, device: _Device
) -> float:
    """How long the detector waited to confirm: from the episode's first breaching reading
    (kept in the rule's state) to the reading that opened it. Without that state, the
    nominal span: ``persistence - 1`` sampling periods of the device."""
    start = state.get(f"r:{alert.rule}", {}).get("start_us")
    if isinstance(start, int) and start <= alert.at_us:
        return (alert.at_us - start) / 1e6
    persistence = rule.persistence if rule is not None else 1
    return (persistence - 1) * device.period_s.get(alert.metric, 0.0)


def _limits() -> ValidationLimits:
    """The validator's defaults (VEILLE_FUTURE_TOLERANCE_S, VEILLE_MAX_AGE_S), not the
    environment's: the evaluation must not depend on who runs it."""
    fields = Settings.model_fields
    return ValidationLimits(
        future_tolerance_us=round(float(fields["future_tolerance_s"].default) * 1e6),
        max_age_us=round(float(fields["max_age_s"].default) * 1e6),
    )


def _simulation_for(options: EvaluateOptions) -> Simulation:
    if options.patients < 1 or options.hours <= 0:
        raise VeilleError(
            f"need --patients >= 1 and --hours > 0, got {options.patients} and {options.hours:g}"
        )
    try:
        config = SimulationConfig(
            patients=options.patients, minutes=options.hours * 60.0, seed=options.seed
        )
    except ValueError as exc:
        raise VeilleError(f"cannot simulate that: {exc}") from exc
    return Simulation(config)


@dataclass(slots=True)
class _Counts:
    messages: int = 0
    readings: int = 0  # as sent, duplicates included
    dead_letters: int = 0  # gateway and validator; 0 for a sound simulator


def _validated(
    simulation: Simulation, registry: _Registry, counts: _Counts
) -> Iterator[tuple[int, ReadingBatch]]:
    """``(send time, batch)``: each MQTT message through the gateway and the validator, in
    send order, the validator's clock at the send time (no pipeline latency)."""
    limits = _limits()
    partitioner = KeyPartitioner(1)
    for send_at_us, topic, payload, n_readings in simulation.messages():
        counts.messages += 1
        counts.readings += n_readings
        inbound = InboundMessage(topic, payload, counts.messages, MQTT_QOS, send_at_us, False)
        plan = plan_forward([inbound], GATEWAY_ID, partitioner)
        counts.dead_letters += len(plan.dead_letters)
        for envelope in (e for r in plan.records for e in envelopes_of(r.value)):
            result = validate_envelope(
                envelope,
                lookup=registry,
                now_us=send_at_us,
                limits=limits,
            )
            counts.dead_letters += len(result.dead_letters)
            for batch in result.batches:
                yield send_at_us, batch


DEFAULT_RULE_SET: Final = rules_by_metric(DEFAULT_RULES)


def _detect_step(batch: ReadingBatch, state: PatientState, now_us: int) -> list[AlertEvent]:
    """What the ``detect_alerts`` agent does with one batch (the same function); a simulated
    fleet has no threshold overrides, so the default rules apply. Technical alerts (lost
    signal, silence) are not clinical alarms: the evaluation leaves them out."""
    return [
        a
        for a in process_readings(batch, state, DEFAULT_RULE_SET, now_us=now_us)
        if not a.rule.startswith(TECHNICAL_RULE_PREFIX)
    ]


def evaluate(options: EvaluateOptions) -> dict[str, Any]:
    """Run the simulation through validation and detection; the report as a JSON object."""
    simulation = _simulation_for(options)
    truth = ground_truth(simulation.fleet)
    events = [TruthEvent.from_truth(e) for e in truth["events"]]
    devices = _devices(truth)
    rules = {r.rule_id: r for r in DEFAULT_RULES}
    naive = NaiveBaseline(DEFAULT_RULES)
    veille, baseline = AlertScorer(events), AlertScorer(events)
    states: dict[str, bytes] = {}  # the Faust table: patient -> JSON state
    counts = _Counts()
    for send_at_us, batch in _validated(simulation, _Registry(simulation), counts):
        device = devices[batch.device_id]
        for naive_alert in naive.alerts(batch, skew_us=device.skew_us, raised_us=send_at_us):
            baseline.add(naive_alert)
        stored = states.get(batch.patient)
        state: PatientState = orjson.loads(stored) if stored else {}
        for alert in _detect_step(batch, state, send_at_us):
            if alert.kind is not AlertEventKind.OPENED:
                continue  # resolutions, escalations: not a new alarm
            veille.add(
                ObservedAlert(
                    alert.patient,
                    alert.rule,
                    alert.metric,
                    alert.at_us - device.skew_us,
                    _confirmation_s(alert, state, rules.get(alert.rule), device),
                    send_at_us,
                )
            )
        states[batch.patient] = orjson.dumps(state)
    patient_days = options.patients * options.hours / 24.0
    veille_score, baseline_score = veille.score(patient_days), baseline.score(patient_days)
    reduction = alert_reduction(baseline_score.alerts, veille_score.alerts)
    return {
        "seed": options.seed,
        "patients": options.patients,
        "hours": options.hours,
        "readings": counts.readings,
        "messages": counts.messages,
        "events": len(events),
        "veille": veille_score.to_json(),
        "baseline": baseline_score.to_json(),
        "alert_reduction": None if reduction is None else round(reduction, 4),
        "targets": targets(veille_score, reduction),
        "grace_period_s": GRACE_PERIOD_S,
        "dead_letters": counts.dead_letters,
    }


def run_evaluate(options: EvaluateOptions) -> tuple[int, str]:
    """Exit code and the JSON report; 0 whether or not the targets are met (the JSON says)."""
    report = evaluate(options)
    text = orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE).decode()
    if options.out is not None:
        try:
            options.out.write_text(text)
        except OSError as exc:
            raise VeilleError(f"cannot write the report to {options.out}: {exc}") from exc
    return 0, text
