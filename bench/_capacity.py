"""Issue 14's headline: the highest rate the pipeline sustains per payload shape, and the raw
stages' ceilings in the same run (efficiency = sustained rate / the slowest stage).

Search: offered rates rise by :data:`FACTOR` from the shape's start in short steps until one
is not sustained (``_sustain``: every message acknowledged, lag bounded, drained), then one
step at :data:`HALFWAY` above the last sustained rate; when the start itself is not
sustained, they fall by :data:`FACTOR` until one is (:func:`next_search_rate`). The best
search rate is then held for :data:`HOLD_S` seconds, and while a hold fails, the next
rate below it (:func:`hold_rates`: the sustained search rates, with the rate halfway by
ratio between two a whole rung apart), :data:`MAX_HOLDS` holds at most: a 20 s step
allows its backlog a tenth of its rate's worth of growth, a 60 s hold a thirtieth, and a
detector 7 % too slow passes the one and fails the other (run of 2026-12-04 18:40).
Then half the held rate for :data:`LATENCY_S` (by shape) with some patients' SpO2 low:
publish -> stored and publish -> alert event latencies.
Ceilings: Mosquitto delivering to a gateway-like subscriber with the shape's payloads
(``_mqtt_ceiling``), Kafka producing and consuming records of one message of the shape
(``_kafka_ceiling``: pessimistic, since the gateway packs several messages into a record),
and PostgreSQL's COPY of fresh rows (section 2 of the report). Beside them, measured apart in
the same run: what TLS adds per message (``_tls_cost``) and what issue 15's instrumentation
costs per message (``_telemetry_cost``), shared out by the mean sizes of the gateway's bursts,
the workers' groups and the sink's batches, scraped from the components' metrics around each
hold (``_batch_sizes``).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from veille.stack import LocalStack

from ._batch_sizes import BatchSizes, scrape_all, sizes_between
from ._kafka_ceiling import KafkaCeiling, measure_kafka_ceiling
from ._mqtt_ceiling import MqttCeiling, measure_mqtt_ceiling, publish_packet_bytes
from ._proc import memory_kib
from ._profile import Profile, profile_processes
from ._sustain import SHAPES, StepResult, stepper
from ._telemetry_cost import TelemetryCost, measure_telemetry_cost
from ._tls_cost import TlsCost, measure_tls_cost

__all__ = [
    "Capacity",
    "Ceilings",
    "PIPELINE",
    "find_capacity",
    "hold_rates",
    "measure_ceilings",
    "next_search_rate",
]

FACTOR = 1.4
# After the first rate that fails, one step at the ratio's midpoint (1.18x the last sustained
# one): a 1.4x ladder alone under-reports the capacity by up to 40 % (upload30 sustained
# 48,404 readings/s and failed at 67,766 on 2026-12-05 15:03).
HALFWAY = math.sqrt(FACTOR)
SEARCH_S = 20.0
HOLD_S = 60.0
# Uploads' alerts are not timed (their readings were measured before the upload was sent):
# 20 s give 27,000 stored latencies at 1,336 msg/s and keep a run with two failed holds
# under 15 minutes (924 s with 40 s, a300b0a).
LATENCY_S = {"single": 40.0, "upload30": 20.0}
ABNORMAL_EVERY = 10  # every 10th device's SpO2 opens an alert: 100 alerts a step
MAX_SEARCH_STEPS = 8
MAX_HOLDS = 3
MAX_STEPS_DOWN = 3  # below a start that is not sustained: 2,744 -> 1,000 single msg/s at most
# On the ladder the first starts (1,000 and 300 msg/s) climbed, so the same rates are visited:
# 1,960 and 588 (half the medians of 2026-12-04, 3,842 and 1,152) brought `make bench` to 821 s
# on 46e215d, and 942 s on a73f75e, whose search reached a rate its 60 s hold failed. One rung
# higher (0.71x the medians) saved a step per shape; a slower machine steps down from there.
# Two rungs up since the detector's 5 s state flush (10,541 and 1,613 held, 2026-12-05): the
# step saved pays for the step halfway (:data:`HALFWAY`). Three since the runs on 134b9e5
# (884 and 892 s, medians 11,507 and 1,909 msg/s): a failed hold and its retry no longer
# take the run past 15 minutes. Four since be1e996 (981 s: a failed hold at 14,758 single and
# one at 2,673 upload30; 10,541 and 2,259 held), 0.71x of those held rates, the rungs unchanged.
START_MSG_PER_S = {"single": 1_960.0 * FACTOR**4, "upload30": 588.0 * FACTOR**4}
# Offered well above what Mosquitto and one paho subscriber deliver: 20,000 and 5,000 were
# delivered in full in every run until 2026-12-05 (19,972 and 4,998 msg/s), so they measured
# the offer, and the upload30 efficiency took it for the slowest stage once the database's
# COPY passed it. Offered 60,000 and 15,000 on the same stack: 21,518 and 14,284 delivered.
MQTT_CEILING_OFFER = {"single": 60_000.0, "upload30": 15_000.0}
MQTT_CEILING_S = {"single": 5.0, "upload30": 3.0}  # 300,000 and 45,000 messages
TLS_MESSAGES = 20_000
KAFKA_CEILING_RECORDS = {"single": 40_000, "upload30": 15_000}
# Bytes of one message of the shape as the raw record carries it (measured from the load).
KAFKA_RECORD_BYTES = {"single": 250, "upload30": 4_000}
PIPELINE = (
    "gateway", "validator", "detector", "sink", "Kafka (Tansu)", "MQTT (Mosquitto)", "PostgreSQL",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Ceilings:
    mqtt: MqttCeiling
    kafka: KafkaCeiling
    database_rows_per_s: float  # COPY, fresh rows
    tls: TlsCost | None = None  # what TLS adds per message on the MQTT hops
    instrumentation: TelemetryCost | None = None  # issue 15's metrics and correlation ids

    def messages_per_s(self, k: int) -> dict[str, float]:
        """Each stage's limit in messages of ``k`` readings a second."""
        return {
            "MQTT (Mosquitto -> paho subscriber)": self.mqtt.delivered_rate,
            "Kafka (produce, one message a record)": self.kafka.produced_per_s,
            "PostgreSQL (COPY)": self.database_rows_per_s / k,
        }


@dataclass(slots=True)
class Capacity:
    shape: str
    search: list[StepResult] = field(default_factory=list)
    holds: list[StepResult] = field(default_factory=list)
    at_half: StepResult | None = None  # half the held rate, latencies measured
    profiles: list[Profile] = field(default_factory=list)  # during the first hold
    peak_rss_mib: dict[str, float] = field(default_factory=dict)  # VmHWM after the steps
    batch_sizes: BatchSizes | None = None  # during the sustained hold; None: not measured

    @property
    def readings_per_message(self) -> int:
        return SHAPES[self.shape]

    @property
    def sustained(self) -> StepResult | None:
        """The highest rate held for HOLD_S with bounded lag, if any."""
        held = [h for h in self.holds if h.sustained]
        return max(held, key=lambda h: h.offered_msg_per_s) if held else None

    def pipeline_cpu_us_per_message(self) -> float | None:
        best = self.sustained
        if best is None:
            return None
        return sum(best.cpu_us_per_message.get(name, 0.0) for name in PIPELINE)


async def measure_ceilings(
    stack: LocalStack, shape: str, database_rows_per_s: float, progress: Callable[[str], None]
) -> Ceilings:
    """Run before any pipeline process runs on ``stack``: a gateway session would otherwise
    get a copy of the ceiling's messages."""
    k = SHAPES[shape]
    mqtt = await measure_mqtt_ceiling(stack, MQTT_CEILING_OFFER[shape], MQTT_CEILING_S[shape], k)
    progress(f"ceiling {shape}: MQTT {mqtt.delivered_rate:,.0f} msg/s delivered")
    broker = next(s.pid for s in stack.status() if s.name == "kafka")
    assert broker is not None
    kafka = await measure_kafka_ceiling(
        stack.env()["VEILLE_KAFKA_BOOTSTRAP"], broker, KAFKA_CEILING_RECORDS[shape],
        KAFKA_RECORD_BYTES[shape],
    )  # fmt: skip
    progress(f"ceiling {shape}: Kafka {kafka.produced_per_s:,.0f} records/s produced")
    tls = await asyncio.to_thread(
        measure_tls_cost, stack.certificates, publish_packet_bytes(k), TLS_MESSAGES
    )
    progress(f"ceiling {shape}: TLS {tls.per_message_us:.1f} us per message (two MQTT hops)")
    instrumentation = await asyncio.to_thread(measure_telemetry_cost, k)
    progress(f"ceiling {shape}: instrumentation {instrumentation.per_message_worst_us:.1f} us "
             "per message at worst (alone in its bursts, groups and batches)")  # fmt: skip
    return Ceilings(mqtt, kafka, database_rows_per_s, tls, instrumentation)


def next_search_rate(outcomes: list[tuple[float, bool]]) -> float | None:
    """The next rate to try after ``outcomes`` (offered msg/s, sustained), None to stop: up
    while steps are sustained; at the first that is not, one step halfway (by ratio) between
    it and the last sustained one, then stop; when the first step already was not, down until
    one is, at most :data:`MAX_STEPS_DOWN` steps (a run whose start is just too fast, by a
    noisy second, still finds a rate to hold)."""
    first_sustained = outcomes[0][1]
    rate, sustained = outcomes[-1]
    if first_sustained:
        if len(outcomes) > 1 and rate < outcomes[-2][0]:
            return None  # that was the step halfway
        if sustained:
            return rate * FACTOR
        return rate / FACTOR * HALFWAY
    if sustained or len(outcomes) > MAX_STEPS_DOWN:
        return None
    return rate / FACTOR


def hold_rates(outcomes: list[tuple[float, bool]]) -> list[float]:
    """The rates to hold in turn until one holds, :data:`MAX_HOLDS` at most: the sustained
    search rates from the best down, the rate halfway (by ratio) between two of them a whole
    :data:`FACTOR` apart before the lower one, then :data:`HALFWAY` below the lowest each
    time; none without a sustained search step. Without the halfway rates a failed hold fell
    a whole rung: 14,758 single msg/s held 43 s, then 10,541 (be1e996), 29 % below."""
    sustained = sorted((rate for rate, sustained in outcomes if sustained), reverse=True)
    rates: list[float] = []
    for rate in sustained:
        if rates and rates[-1] / rate > HALFWAY * 1.01:
            rates.append(rates[-1] / HALFWAY)
        rates.append(rate)
    while rates and len(rates) < MAX_HOLDS:
        rates.append(rates[-1] / HALFWAY)
    return rates[:MAX_HOLDS]


async def find_capacity(
    stack: LocalStack, state_dir: Path, shape: str, progress: Callable[[str], None]
) -> Capacity:
    found = Capacity(shape)
    async with stepper(stack, state_dir) as steps:
        rate: float | None = START_MSG_PER_S[shape]
        while rate is not None and len(found.search) < MAX_SEARCH_STEPS:
            step = await steps.step(shape, rate, SEARCH_S)
            found.search.append(step)
            progress(f"{shape} {rate:,.0f} msg/s for {SEARCH_S:.0f} s: "
                     f"{'sustained' if step.sustained else 'NOT sustained'}")  # fmt: skip
            rate = next_search_rate([(s.offered_msg_per_s, s.sustained) for s in found.search])
        for candidate in hold_rates([(s.offered_msg_per_s, s.sustained) for s in found.search]):

            async def sample() -> None:  # py-spy from 10 s after the hold's first message
                found.profiles = await profile_processes(
                    steps.pids.components, delay_s=10.0, seconds=20.0
                )

            before = await scrape_all(steps.metrics_urls)
            hold = await steps.step(
                shape, candidate, HOLD_S, during=None if found.holds else sample
            )
            if hold.sustained:  # the step has drained: every message went through every stage
                found.batch_sizes = sizes_between(before, await scrape_all(steps.metrics_urls))
            found.holds.append(hold)
            progress(f"{shape} {candidate:,.0f} msg/s held {HOLD_S:.0f} s: "
                     f"{'sustained' if hold.sustained else 'NOT sustained'}")  # fmt: skip
            if hold.sustained:
                break
        processes = {**steps.pids.components, **steps.pids.services}
        for name, pid in processes.items():
            memory = memory_kib(pid)
            if memory is not None:
                found.peak_rss_mib[name] = memory[1] / 1024
        best = found.sustained
        if best is not None:
            half = best.offered_msg_per_s / 2
            found.at_half = await steps.step(shape, half, LATENCY_S[shape], ABNORMAL_EVERY)
            lat = found.at_half.latency
            if lat is not None:
                progress(f"{shape} at {half:,.0f} msg/s: stored p99 {lat.stored_p99_ms:.0f} ms, "
                         f"alert p99 {lat.alert_p99_ms} ms over {lat.alert_n} alerts")  # fmt: skip
    return found
