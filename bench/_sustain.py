"""What the pipeline sustains: the offered rate stepped up until the backlog grows.

Each step offers one rate for ``seconds`` through the load generator (:mod:`._loadgen`,
1,000 devices round-robin, single readings or uploads of 30), with the real gateway,
workers and sink running. The backlog is the readings the generator has sent minus those
stored (the sink's count of committed rows, every second, :mod:`._progress`; the exact count
in the table once the step is over). A rate is sustained when every message was
acknowledged, the backlog's trend over the step's second half adds less than one second's
worth (the lag stays bounded: :func:`trend_growth`, a least-squares line through the samples,
not two samples, whose jitter alone is as large as that second), the pipeline drains within
:data:`DRAIN_S` after the step, and the detector keeps up in the same way.

A step whose backlog is clearly unbounded halfway through (:func:`clearly_unbounded`) stops
early: the generator sends nothing more, the pipeline drains what it has, and the step counts
as not sustained. A failed 60 s hold used to cost about 90 s of the bench's 15 minutes.

``python -m bench._sustain SHAPE RATE [RATE ...] [--seconds S]`` runs the steps on a
local stack of its own and prints one JSON object per step.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg
from psycopg.rows import TupleRow

from devices import DeviceBinding, device_topic
from store import upsert_bindings
from veille.stack import LocalStack, PipelineProcesses

from ._e2e import PROCESSES, _Pids
from ._loadgen import LateStart, compact, start_on_stack
from ._progress import PipelineProgress, pipeline_progress
from ._workload import DEVICE_TYPE, TENANT

__all__ = [
    "SHAPES", "StepResult", "Stepper", "clearly_unbounded", "planned_start", "run_steps",
    "stepper", "trend_growth",
]  # fmt: skip

_ProgressProbe = Callable[[], Awaitable[PipelineProgress | None]]

DEVICES = 1000
CONNECTIONS = 4
POLL_S = 1.0
DRAIN_S = 20.0
SETTLE_MAX_S = 180.0  # after a step that did not drain, before the next one (_settle)
SETTLE_QUIET_S = 2.0
# Stop a step early once, from its middle on, the backlog's trend adds this many seconds'
# worth over the step's second half (the pass mark is one; a trend through 15 samples
# jitters by about one) while the backlog already holds LEVEL seconds' worth (a kept-up
# pipeline holds its latency's worth, 1-2.5 s here).
EARLY_STOP_GROWTH_S = 4.0
EARLY_STOP_LEVEL_S = 5.0
EARLY_STOP_SAMPLES = 8  # in the trend, at least
# The generator's interpreter, numpy, its packet files and four TLS connections: 1.2 s to
# import on a busy machine (2026-12-05), a few hundred ms to connect.
GENERATOR_START_S = 4.0
SHAPES = {"single": 1, "upload30": 30}
# The pulse just before the SpO2: screening drops an SpO2 with no plausible pulse of the same
# device within 5 s (streams/_screening.py), so the low SpO2 of the latency step opens alerts.
_METRICS = (
    ("pulse_rate", 72.0, "/min"), ("spo2", 97.0, "%"), ("heart_rate", 72.0, "/min"),
    ("respiration_rate", 16.0, "/min"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Latency:
    """Milliseconds from a reading's publication (its planned send time: the generator's
    lateness is reported apart) to its row (``stored_at``), and to the ``opened`` alert
    event's row (``recorded_at``) of the reading that opened an alert."""

    stored_p50_ms: float
    stored_p99_ms: float
    stored_n: int
    alert_p50_ms: float | None
    alert_p99_ms: float | None
    alert_n: int


@dataclass(frozen=True, slots=True)
class StepResult:
    shape: str
    readings_per_message: int
    offered_msg_per_s: float
    seconds: float
    sent: int
    acked: int
    generator_max_behind_s: float
    stored_readings_per_s: float  # over the step's second half
    backlog_mid: int  # readings sent and not stored, at the middle of the step
    backlog_end: int
    backlog_growth: float  # readings the backlog's trend adds over the step's second half
    drained_s: float | None  # after the step, until every reading is stored
    cpu_us_per_message: dict[str, float] = field(default_factory=dict)
    latency: Latency | None = None
    # Readings records the detector had not handled yet (behind the sink), at the middle and
    # the end of the step (``_progress``); None in results written before they were measured.
    detector_backlog_mid: int | None = None
    detector_backlog_end: int | None = None
    detector_backlog_growth: float | None = None  # records, as ``backlog_growth``
    readings_records_per_s: float | None = None  # the readings topic's records over the step
    detector_drained_s: float | None = None  # after the step, until it had handled every one
    stopped_early_s: float | None = None  # when the generator was told to stop, if it was

    @property
    def detector_kept_up(self) -> bool | None:
        """The detector's backlog bounded like the stored one: its trend adds less than one
        second's worth of records over the second half, and it is handled within the drain
        time (not waited for when the readings were not all stored in theirs: then the trend
        alone says)."""
        if self.detector_backlog_growth is None or self.readings_records_per_s is None:
            return None
        drain_waited = self.drained_s is not None
        return self.detector_backlog_growth <= self.readings_records_per_s and (
            self.detector_drained_s is not None or not drain_waited
        )

    @property
    def sustained(self) -> bool:
        slack = self.offered_msg_per_s * self.readings_per_message
        return (
            self.stopped_early_s is None
            and self.acked == self.sent
            and self.backlog_growth <= slack
            and self.drained_s is not None
            and self.detector_kept_up is not False
        )


def trend_growth(points: Sequence[tuple[float, float]], seconds: float) -> float:
    """What the least-squares line through ``points`` (elapsed s, backlog) from the first
    quarter of a step of ``seconds`` on (the pipeline's latency has built its backlog by
    then) adds over the step's second half. One sample jitters by about a second's worth of
    readings with the batches of the sink and the polls of the workers; a line through a
    sample a second does not."""
    kept = [(t, b) for t, b in points if t >= seconds / 4]
    if len(kept) < 2 or len({t for t, _ in kept}) < 2:
        raise ValueError(f"a trend needs samples at two times at least, got {len(kept)}")
    times, backlogs = zip(*kept, strict=True)
    return statistics.linear_regression(times, backlogs).slope * seconds / 2


def clearly_unbounded(points: Sequence[tuple[float, float]], seconds: float, per_s: float) -> bool:
    """Whether a step of ``seconds`` can stop now: from its middle on, with
    :data:`EARLY_STOP_SAMPLES` in the trend, the backlog's trend (:func:`trend_growth`) adds
    more than :data:`EARLY_STOP_GROWTH_S` seconds' worth (``per_s``: what one second
    brings) and the latest backlog holds more than :data:`EARLY_STOP_LEVEL_S`."""
    if not points or points[-1][0] < seconds / 2:
        return False
    if sum(1 for t, _ in points if t >= seconds / 4) < EARLY_STOP_SAMPLES:
        return False
    return (
        trend_growth(points, seconds) > EARLY_STOP_GROWTH_S * per_s
        and points[-1][1] > EARLY_STOP_LEVEL_S * per_s
    )


def _iso(at_us: int) -> str:
    seconds, micros = divmod(at_us, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z"


def _messages(
    prefix: str,
    k: int,
    rate: float,
    seconds: float,
    start_us: int,
    abnormal_every: int = 0,
    first_round: int = 0,
) -> list[tuple[str, bytes]]:
    """Message ``i`` from device ``i % DEVICES``, sent at ``start + i / rate``; a single
    reading measured then, or an upload of ``k`` readings a second apart ending then. With
    ``abnormal_every`` N, every Nth device's SpO2 reads 88 %: its patient's ``spo2_low``
    alert opens at the third such reading (88 after 97 is no impossible jump, which
    screening would hold back until confirmed: the devices sent 97 in the earlier steps).
    Rounds (one message of every device) are numbered from ``first_round``, so the devices'
    sequence numbers go on from an earlier step."""
    out = []
    for i in range(int(rate * seconds)):
        device = f"{prefix}-{i % DEVICES:04d}"
        sent_us = start_us + int(i / rate * 1e6)
        round_ = first_round + i // DEVICES
        readings = []
        for j in range(k):
            metric, value, unit = _METRICS[(round_ * k + j) % len(_METRICS)]
            if abnormal_every and metric == "spo2" and (i % DEVICES) % abnormal_every == 0:
                value = 88.0
            readings.append({
                "metric": metric, "value": value, "unit": unit, "seq": round_ * k + j + 1,
                "measured_at": _iso(sent_us - (k - 1 - j) * 1_000_000),
            })  # fmt: skip
        body = (
            {"v": 1, "device_id": device, **readings[0]}
            if k == 1
            else {"v": 1, "device_id": device, "readings": readings}
        )
        out.append((device_topic(TENANT, device), compact(orjson.dumps(body))))
    return out


async def _provision(dsn: str, prefix: str) -> list[str]:
    ids = [f"{prefix}-{d:04d}" for d in range(DEVICES)]
    since = int((time.time() - 3600) * 1e6)
    bindings = [
        (DeviceBinding(i, TENANT, f"unit-{n % 10}", f"p-{i}", since), DEVICE_TYPE)
        for n, i in enumerate(ids)
    ]
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await upsert_bindings(conn, bindings)
    return ids


async def _stored(
    conn: psycopg.AsyncConnection[TupleRow], ids: list[str], since: datetime, after_seq: int
) -> int:
    """The exact count of the step's readings (measured from ``since`` on, sequence numbers
    above ``after_seq``), once the step is over (its CPU figures are taken before)."""
    cur = await conn.execute(
        "SELECT count(*) FROM readings WHERE device_id = ANY(%s) AND measured_at >= %s "
        "AND seq > %s",
        (ids, since, after_seq),
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def _latency(
    conn: psycopg.AsyncConnection[TupleRow],
    ids: list[str],
    since: datetime,
    k: int,
    after_seq: int,
) -> Latency:
    """Percentiles in SQL. Readings: the last of each upload of the step only (measured at its
    send time; the others were measured up to ``k - 1`` s before). Alerts: ``spo2_low`` opened
    events of this step's patients, whose time is the opening reading's."""
    cur = await conn.execute(
        "SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM "
        "stored_at - measured_at) * 1000), count(*) FROM readings "
        "WHERE device_id = ANY(%s) AND measured_at >= %s AND seq > %s AND seq %% %s = 0",
        (ids, since, after_seq, k),
    )
    stored = await cur.fetchone()
    cur = await conn.execute(
        "SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM "
        "e.recorded_at - e.at) * 1000), count(*) FROM alert_events e "
        "JOIN alerts a USING (alert_id) WHERE e.kind = 'opened' AND a.rule = 'spo2_low' "
        "AND a.patient_pseudonym = ANY(%s) AND e.at >= %s",
        ([f"p-{i}" for i in ids], since),
    )
    alert = await cur.fetchone()
    assert stored is not None and alert is not None
    (s50, s99), (a50, a99) = stored[0] or (0.0, 0.0), alert[0] or (None, None)
    return Latency(s50, s99, int(stored[1]), a50, a99, int(alert[1]))


def _lead_s(fleet: _Fleet, messages: float, k: int) -> float:
    """How far ahead to plan a step of ``messages``: messages, packets and files are built
    first, then the generator starts and connects. The first step of a shape assumes half
    the speed of an idle machine (40,000 messages and 400,000 readings a second: a 60 s
    hold at 7,530 msg/s started 1 s late with the 150,000 a second this once assumed, a
    shared machine ran a 60 s upload hold 3.8 s late with the idle figures) and 8 s for the
    rest; later steps twice what the previous step's building took per message, and
    :data:`GENERATOR_START_S` (the first rule planned a 60 s hold at 7,530 msg/s 33 s ahead)."""
    if fleet.prep_s_per_message is None:
        return 8.0 + messages * (1 / 20_000 + k / 200_000)
    return GENERATOR_START_S + 2.0 * fleet.prep_s_per_message * messages


@dataclass(slots=True)
class _Fleet:
    """The bench's 1,000 devices, the same for every step of a pipeline run, as a hospital's
    fleet is steady. Fresh devices each step left the previous steps' devices silent: their
    patients' states piled up in the detector (whose timer reads every state every 5 s) and,
    600 s after their step, every one of them raised its "device silent" alert at once."""

    prefix: str
    ids: list[str] = field(default_factory=list)
    rounds: int = 0  # messages each device has sent so far: sequence numbers go on from there
    last_measured_at: float = 0.0  # of the latest reading sent, as a Unix time
    prep_s_per_message: float | None = None  # building the previous step, until its start
    planned_start_at: float | None = None  # of the latest step's first message, Unix time


@contextlib.asynccontextmanager
async def _alongside(
    during: Callable[[], Awaitable[None]] | None,
) -> AsyncIterator[asyncio.Future[None] | None]:
    """``during()`` running from the step's first message; cancelled if the step fails."""
    task = asyncio.ensure_future(during()) if during is not None else None
    try:
        yield task
    finally:
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _step(
    stack: LocalStack,
    dsn: str,
    pids: _Pids,
    shape: str,
    rate: float,
    seconds: float,
    fleet: _Fleet,
    progress_of: _ProgressProbe,
    abnormal_every: int = 0,
    may_stop_early: bool = True,
    during: Callable[[], Awaitable[None]] | None = None,
) -> StepResult:
    k = SHAPES[shape]
    prefix = fleet.prefix
    if not fleet.ids:
        fleet.ids = await _provision(dsn, prefix)
        await asyncio.sleep(3.0)  # the validator's directory hears of them (LISTEN/NOTIFY)
    ids = fleet.ids
    planned_at = time.time()
    # A step's readings are told apart by their sequence numbers, above every earlier step's,
    # and were measured from ``since`` on (an upload's first reading k - 1 s before it is
    # sent). An upload's readings overlap the previous step's in time, as a device's uploads
    # overlap each other within a step (one every DEVICES / rate s, each spanning k - 1 s):
    # waiting k + 2 s after the previous step, as this did until 2026-12-05, idled the
    # upload30 runs 30 s a step. Single readings (measured when sent) still come after the
    # previous step's.
    start_at = max(planned_at + _lead_s(fleet, rate * seconds, k), fleet.last_measured_at + 2)
    start_us = int(start_at * 1e6)
    fleet.planned_start_at = start_at
    after_seq = fleet.rounds * k  # the step's first reading is after_seq + 1
    messages = _messages(prefix, k, rate, seconds, start_us, abnormal_every, fleet.rounds)
    fleet.rounds += -(-len(messages) // DEVICES)
    fleet.last_measured_at = start_at + (len(messages) - 1) / rate
    since = datetime.fromtimestamp(start_at, UTC) - timedelta(seconds=k + 1)
    total = len(messages) * k
    with tempfile.TemporaryDirectory(prefix="veille-sustain-") as work:
        generator = start_on_stack(
            stack, messages, rate=rate, start_at=start_at, work_dir=Path(work),
            connections=CONNECTIONS,
        )  # fmt: skip
        fleet.prep_s_per_message = (time.time() - planned_at) / len(messages)
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await asyncio.sleep(max(0.0, start_at - time.time()))
            start = await progress_of()
            if start is None:
                raise RuntimeError(
                    "the sink's and the detector's /metrics did not answer: a step reads its "
                    "progress there; start them with their metrics ports (PipelineProcesses)"
                )
            async with _alongside(during) as side:
                cpu_before = pids.cpu()
                samples: list[tuple[float, int, PipelineProgress]] = []  # (elapsed, sent, progress)
                stopped_early_s = None
                while time.time() - start_at < seconds:
                    await asyncio.sleep(POLL_S)
                    generator.raise_if_failed()
                    elapsed = min(time.time() - start_at, seconds)
                    sent = min(len(messages), int(elapsed * rate)) * k
                    if (now := await progress_of()) is not None:
                        samples.append((elapsed, sent, now))
                        stoppable = may_stop_early and elapsed < seconds  # the end is the end
                        if stoppable and _unbounded(samples, start, seconds, rate * k):
                            generator.stop_sending()
                            stopped_early_s = elapsed
                            break
                cpu_after = pids.cpu()
                if side is not None:
                    await side
            if not samples:
                raise RuntimeError("the sink's and the detector's /metrics stopped answering")
            early = None
            if stopped_early_s is not None:  # drain what was sent: the next step starts clean
                early = await asyncio.to_thread(generator.result, 120.0)
                total = early.sent * k
            drained_s = None
            ended = time.time()
            while time.time() - ended < DRAIN_S:
                if await _stored(conn, ids, since, after_seq) >= total:
                    drained_s = time.time() - ended
                    break
                await asyncio.sleep(0.5)
            # A step whose readings were not all stored in time failed already; waiting
            # again for the detector would only add DRAIN_S to the run.
            detector_drained_s = (
                await _detector_drain(progress_of, ended) if drained_s is not None else None
            )
            if abnormal_every:
                await asyncio.sleep(2.0)  # the sink's next poll stores the last alert events
            # after the CPU figures are taken
            latency = await _latency(conn, ids, since, k, after_seq)
        result = early if early is not None else await asyncio.to_thread(generator.result, 120.0)
    mid = min(samples, key=lambda s: abs(s[0] - samples[-1][0] / 2))  # of what ran
    last = samples[-1]
    tail_rate = (last[2].stored - mid[2].stored) / max(last[0] - mid[0], 1e-9)
    cpu = {name: (cpu_after[name] - cpu_before[name]) / max(result.sent, 1) * 1e6
           for name in (*PROCESSES, "validator", "detector") if name in cpu_after
           and name != "publisher (bench)"}  # fmt: skip
    cpu["generator"] = result.cpu_us_per_message
    stored_backlog, detector_backlog, records_per_s = _backlogs(samples, start)
    return StepResult(
        shape=shape, readings_per_message=k, offered_msg_per_s=rate, seconds=seconds,
        sent=result.sent, acked=result.acked, generator_max_behind_s=result.max_behind_s,
        stored_readings_per_s=tail_rate,
        backlog_mid=mid[1] - (mid[2].stored - start.stored),
        backlog_end=last[1] - (last[2].stored - start.stored),
        backlog_growth=trend_growth(stored_backlog, seconds),
        drained_s=drained_s, cpu_us_per_message=cpu, latency=latency,
        detector_backlog_mid=mid[2].detector_backlog,
        detector_backlog_end=last[2].detector_backlog,
        detector_backlog_growth=trend_growth(detector_backlog, seconds),
        readings_records_per_s=records_per_s, detector_drained_s=detector_drained_s,
        stopped_early_s=stopped_early_s,
    )  # fmt: skip


def _backlogs(
    samples: list[tuple[float, int, PipelineProgress]], start: PipelineProgress
) -> tuple[list[tuple[float, float]], list[tuple[float, float]], float]:
    """From a step's samples: the stored backlog (readings sent and not stored), the
    detector's (readings records the sink fetched and it has not handled), and the rate of
    readings records the sink has fetched so far."""
    stored = [(t, float(sent - (p.stored - start.stored))) for t, sent, p in samples]
    detector = [(t, float(p.detector_backlog)) for t, _, p in samples]
    elapsed, _, last = samples[-1]
    records_per_s = (last.fetched_by_sink - start.fetched_by_sink) / max(elapsed, 1e-9)
    return stored, detector, records_per_s


def _unbounded(
    samples: list[tuple[float, int, PipelineProgress]],
    start: PipelineProgress,
    seconds: float,
    readings_per_s: float,
) -> bool:
    """:func:`clearly_unbounded` for the stored backlog (readings) or the detector's (readings
    records, at the rate the sink has fetched them so far)."""
    stored, detector, records_per_s = _backlogs(samples, start)
    if clearly_unbounded(stored, seconds, readings_per_s):
        return True
    return records_per_s > 0 and clearly_unbounded(detector, seconds, records_per_s)


def settled(history: list[tuple[float, PipelineProgress]], quiet_s: float) -> bool:
    """Nothing left in flight: the detector has handled every readings record the sink has,
    and the sink has stored nothing new for ``quiet_s`` (no step is offering meanwhile)."""
    if not history or history[-1][1].detector_backlog:
        return False
    last_at, last = history[-1]
    if last_at - history[0][0] < quiet_s:
        return False
    return all(p.stored == last.stored for at, p in history if at >= last_at - quiet_s)


async def _settle(progress_of: _ProgressProbe) -> float | None:
    """Wait for a backlog a failed step left to drain (at most SETTLE_MAX_S): a step started
    on top of it fails for it, and its generator can start late on the busy machine (a 60 s
    hold at 10,541 msg/s right after a failed one at 14,758 did both, 2026-12-05 23:20).
    Seconds waited, or None when it did not drain in time."""
    started = time.monotonic()
    history: list[tuple[float, PipelineProgress]] = []
    while (waited := time.monotonic() - started) < SETTLE_MAX_S:
        progress = await progress_of()
        if progress is not None:
            history.append((waited, progress))
            if settled(history, SETTLE_QUIET_S):
                return waited
        await asyncio.sleep(0.5)
    return None


async def _detector_drain(progress_of: _ProgressProbe, ended: float) -> float | None:
    """Seconds from the step's end until the detector had handled every readings record the
    sink had fetched (the sink is done by now, or the step is not sustained anyway)."""
    while time.time() - ended < DRAIN_S:
        progress = await progress_of()
        if progress is None:
            return None
        if progress.detector_backlog == 0:
            return time.time() - ended
        await asyncio.sleep(0.5)
    return None


@dataclass(slots=True)
class Stepper:
    """Offers one rate after another to the same running pipeline."""

    stack: LocalStack
    dsn: str
    pids: _Pids
    steps: int = 0
    metrics_urls: dict[str, str] = field(default_factory=dict)  # component -> its /metrics
    fleets: dict[str, _Fleet] = field(default_factory=dict)  # by shape
    last: StepResult | None = None  # the previous step: did it drain?

    async def step(
        self,
        shape: str,
        rate: float,
        seconds: float,
        abnormal_every: int = 0,
        *,
        may_stop_early: bool = True,
        during: Callable[[], Awaitable[None]] | None = None,
    ) -> StepResult:
        """``abnormal_every`` > 0: some patients' SpO2 opens alerts, latencies measured.
        ``may_stop_early`` False: runs its ``seconds`` even when clearly unbounded (a soak).
        ``during()`` runs from the step's first message to the end of its sampling (py-spy)."""
        self.steps += 1
        fleet = self.fleets.setdefault(shape, _Fleet(f"f{len(self.fleets) + 1}{shape[0]}"))
        readings_topic = self.stack.topics.readings
        urls = self.metrics_urls

        async def progress_of() -> PipelineProgress | None:
            return await pipeline_progress(urls, readings_topic)

        last = self.last
        if last is not None and (last.drained_s is None or last.detector_drained_s is None):
            waited = await _settle(progress_of)
            print(f"{shape} {rate:,.0f} msg/s: the previous step's backlog "
                  + (f"drained {waited:.0f} s before it" if waited is not None
                     else f"still there after {SETTLE_MAX_S:.0f} s"), file=sys.stderr)  # fmt: skip

        # A generator that came up late sent nothing: plan again, twice as far ahead (once:
        # a 60 s hold right after a failed step, its backlog still draining, started 1.4 s
        # late on 2026-12-05 16:21 and ended the run).
        def attempt() -> Awaitable[StepResult]:
            return _step(
                self.stack, self.dsn, self.pids, shape, rate, seconds, fleet, progress_of,
                abnormal_every, may_stop_early, during,
            )  # fmt: skip

        sent_before = (fleet.rounds, fleet.last_measured_at, fleet.planned_start_at)
        try:
            self.last = await attempt()
            return self.last
        except LateStart as exc:
            print(f"{shape} {rate:,.0f} msg/s: {exc}; planning it again", file=sys.stderr)
        fleet.rounds, fleet.last_measured_at, fleet.planned_start_at = sent_before
        if fleet.prep_s_per_message is not None:  # measured by the attempt that came late
            fleet.prep_s_per_message *= 2
        self.last = await attempt()
        return self.last


@contextlib.asynccontextmanager
async def stepper(stack: LocalStack, state_dir: Path) -> AsyncIterator[Stepper]:
    """The pipeline's processes (gateway, workers, sink) on ``stack`` for a series of steps,
    stopped on the way out whatever happens."""
    env = stack.env()
    services = {s.name: s.pid for s in stack.status() if s.pid is not None}
    with PipelineProcesses.for_stack(env, state_dir) as processes:
        pids = _Pids({c.name: c.pid for c in processes.components if c.pid is not None}, services)
        urls = {c.name: c.metrics_url() for c in processes.components if c.metrics_port}
        yield Stepper(stack, env["VEILLE_DATABASE_URL"], pids, metrics_urls=urls)


async def run_steps(
    stack: LocalStack,
    state_dir: Path,
    shape: str,
    rates: list[float],
    seconds: float,
    abnormal_every: int = 0,
) -> list[StepResult]:
    results = []
    async with stepper(stack, state_dir) as steps:
        for rate in rates:
            step = await steps.step(shape, rate, seconds, abnormal_every)
            print(json.dumps({**asdict(step), "sustained": step.sustained}), flush=True)
            results.append(step)
            if not step.sustained:
                break
    return results


def _main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._sustain")
    parser.add_argument("shape", choices=sorted(SHAPES))
    parser.add_argument("rates", type=float, nargs="+", help="messages a second, in order")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--abnormal-every", type=int, default=0,
        help="every Nth patient's SpO2 low: alerts open and latencies are measured",
    )  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="veille-sustain-stack-") as state:
        stack = LocalStack(Path(state), partitions=12)
        stack.up()
        try:
            asyncio.run(
                run_steps(
                    stack,
                    Path(state),
                    args.shape,
                    args.rates,
                    args.seconds,
                    args.abnormal_every,
                )  # fmt: skip
            )
        finally:
            stack.down(purge=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main())


async def planned_start(steps: Stepper, shape: str, timeout_s: float = 120.0) -> float:
    """When the first message of the step ``steps`` is planning for ``shape`` is due (Unix
    time), once it is planned: provisioning and building come first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        fleet = steps.fleets.get(shape)
        if fleet is not None and fleet.planned_start_at is not None:
            return fleet.planned_start_at
        await asyncio.sleep(0.2)
    raise RuntimeError(f"no {shape} step was planned within {timeout_s:.0f} s")
