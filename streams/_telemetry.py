"""The stream workers' metrics, health endpoint and lag, wired into the Faust app.

The endpoint and the lag probe run as tasks of the worker's own event loop; commit latency
comes from Faust's sensor hooks (``on_commit_initiated`` / ``on_commit_completed``), the rest
from the agents, counted per group of records, never per reading (the hot path).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from functools import partial
from typing import Any

import faust
import mode

from devices import AlertEvent
from telemetry import ComponentRegistry, ReadinessChecks, WorkerMetrics, serve_telemetry
from veille.settings import Settings

from ._delivery import ConfirmedAcks, Output
from ._lag import follow_lag

__all__ = ["GroupTelemetry", "attach_telemetry"]


class _CommitTimer(faust.Sensor):
    """Faust commits offsets itself: its sensor hooks time each commit."""

    def __init__(self, observe: Callable[[float], None]) -> None:
        super().__init__()
        self._observe = observe

    def on_commit_initiated(self, consumer: Any) -> float:
        return time.monotonic()

    def on_commit_completed(self, consumer: Any, state: Any) -> None:
        if isinstance(state, float):
            self._observe(time.monotonic() - state)


class _Endpoint(mode.Service):
    """The endpoint as a dependency of the app: it starts with the worker, before Faust's
    rebalance and table recovery (minutes on a large changelog), during which a liveness
    probe must still get its answer; an ``app.task`` would start only after them."""

    def __init__(
        self, component: ComponentRegistry, checks: ReadinessChecks, *, host: str, port: int
    ) -> None:
        super().__init__()
        self._serve = partial(serve_telemetry, component, checks, host=host, port=port)
        self._running = AsyncExitStack()

    async def on_start(self) -> None:
        await self._running.enter_async_context(self._serve())

    async def on_stop(self) -> None:
        await self._running.aclose()


class GroupTelemetry:
    """What an agent reports per group of input records."""

    def __init__(self, metrics: WorkerMetrics) -> None:
        role = metrics.role
        self._metrics = metrics
        self._consumed = metrics.consumed.labels(role)
        self._group = metrics.group_records.labels(role)
        self._produce = metrics.produce.labels(role)
        self._awaiting = metrics.awaiting.labels(role)
        self._role = role

    def watch(self, acks: ConfirmedAcks) -> None:
        self._awaiting.set_function(lambda: float(acks.waiting))

    def validated(self, readings: int, dead_letter_reasons: Sequence[str]) -> None:
        self._metrics.readings.inc(readings)
        self._metrics.count(dead_letter_reasons)

    def alerts_sent(self, alerts: Sequence[AlertEvent]) -> None:
        """Alert events the detector's timer sent (escalations, silences, resent outbox
        events): counted when sent, since nothing acks them."""
        for alert in alerts:
            self._metrics.alert_events.labels(alert.kind.value, alert.priority.value).inc()

    def sent(
        self,
        events: Sequence[Any],
        outputs: Sequence[Output],
        then: Callable[[], None] | None = None,
        alerts: Sequence[AlertEvent] = (),
    ) -> Callable[[], None]:
        """Count a group now; the returned callback, run once Kafka confirmed its outputs,
        records the produce latency and the records produced, then runs ``then``."""
        self._consumed.inc(len(events))
        self._group.observe(len(events))
        started = time.monotonic()

        def confirmed() -> None:
            self._produce.observe(time.monotonic() - started)
            per_topic = Counter(o.topic.get_topic_name() for o in outputs)
            for topic, count in per_topic.items():
                self._metrics.produced.labels(self._role, topic).inc(count)
            for alert in alerts:
                self._metrics.alert_events.labels(alert.kind.value, alert.priority.value).inc()
            if then is not None:
                then()

        return confirmed


def attach_telemetry(
    app: faust.App,
    settings: Settings,
    component: ComponentRegistry,
    metrics: WorkerMetrics,
    *,
    input_topics: Sequence[str],
    loaded: tuple[str, Callable[[], bool]],
) -> None:
    """Serve the endpoint and follow the group's lag for the life of the worker.

    Ready: Faust is not in a rebalance and the cache the agent needs (device registry or
    thresholds) is loaded. Lag does not make a worker unready on purpose: taking a lagging
    worker out of service would make the lag worse; the lag alert pages instead.
    """
    group = app.conf.id
    app.sensors.add(_CommitTimer(metrics.commit.labels(group).observe))
    check_name, is_loaded = loaded

    def checks() -> dict[str, bool]:
        return {"kafka_assigned": not app.rebalancing, check_name: is_loaded()}

    app.add_dependency(
        _Endpoint(component, checks, host=settings.metrics_host, port=settings.metrics_port)
    )

    @app.task
    async def follow_group_lag() -> None:
        await follow_lag(
            settings.kafka_bootstrap,
            group,
            list(input_topics),
            metrics.lag,
        )
