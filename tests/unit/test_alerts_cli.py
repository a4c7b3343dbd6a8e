"""``veille alerts ack|resolve`` acts through the clinic's path: same checks, same event;
``resolve-all`` resolves through it too, skipping what was resolved meanwhile."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from clinic import AlertPublisher, ApiError, clinician_event
from clinic._models import AlertSummary
from devices import AlertEvent, AlertEventKind, Priority
from veille.cli.alerts import _act_on_alert
from veille.errors import ConfigurationError
from veille.recovery import (
    RECOVERY_ACTOR,
    ResolvedAtRecovery,
    UnresolvedAlert,
    resolve_unresolved_alerts,
)

ALERT_ID = uuid.UUID("0b8f3c52-6e7d-4a1e-9c3b-2f5d8e7a6b10")
OPENED = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _alert(state: str = "open", level: int = 2) -> AlertSummary:
    return AlertSummary(
        alert_id=ALERT_ID, care_unit="icu", patient="p-1", rule="spo2_low", metric="spo2",
        priority=Priority.HIGH, state=state, escalation_level=level, opened_at=OPENED,
        acknowledged_at=None, acknowledged_by=None, resolved_at=None, resolved_by=None,
        opening_value=85.0, message="SpO2 85 %",
    )  # fmt: skip


class _Cursor:
    def __init__(self, row: tuple[Any, ...] | None) -> None:
        self.row = row

    async def fetchone(self) -> tuple[Any, ...] | None:
        return self.row


class _Database:
    """Answers the two reads of the path: the alert's tenant and unit, then the alert."""

    def __init__(self, alert: AlertSummary | None) -> None:
        self.alert = alert

    async def execute(self, query: str, params: object = None) -> _Cursor:
        if self.alert is None:
            return _Cursor(None)
        if query.startswith("SELECT tenant, care_unit"):
            return _Cursor(("chu-a", self.alert.care_unit))
        return _Cursor(tuple(self.alert.model_dump().values()))


class _Publisher:
    def __init__(self) -> None:
        self.events: list[AlertEvent] = []

    async def publish(self, event: AlertEvent) -> None:
        self.events.append(event)


def _act(alert: AlertSummary | None, kind: AlertEventKind) -> tuple[AlertEvent, _Publisher]:
    publisher = _Publisher()
    event = asyncio.run(
        _act_on_alert(
            cast(Any, _Database(alert)), cast(AlertPublisher, publisher), str(ALERT_ID), kind,
            actor="nurse-42", note="on my way",
        )
    )  # fmt: skip
    return event, publisher


def test_an_acknowledgement_carries_the_alerts_escalation_level() -> None:
    event, publisher = _act(_alert(level=2), AlertEventKind.ACKNOWLEDGED)
    assert publisher.events == [event]
    assert event.level == 2  # the CLI's own copy sent 0 here
    expected = clinician_event(
        _alert(level=2), AlertEventKind.ACKNOWLEDGED, tenant="chu-a", actor="nurse-42",
        note="on my way",
    )  # fmt: skip
    assert event == dataclasses.replace(expected, at_us=event.at_us)


def test_the_clinics_refusals_apply() -> None:
    with pytest.raises(ApiError, match="nothing to resolve"):
        _act(_alert(state="resolved"), AlertEventKind.RESOLVED)
    with pytest.raises(ApiError, match="was acknowledged by"):
        _act(_alert(state="acknowledged"), AlertEventKind.ACKNOWLEDGED)


def test_an_unknown_alert_names_the_list_command() -> None:
    with pytest.raises(ConfigurationError, match="veille alerts list"):
        _act(None, AlertEventKind.ACKNOWLEDGED)


class _Unreachable(_Publisher):
    async def publish(self, event: AlertEvent) -> None:
        raise ApiError(503, "alerts_topic_unavailable", "broker unreachable")


def _recover(alert: AlertSummary | None, publisher: _Publisher) -> ResolvedAtRecovery:
    listed = UnresolvedAlert(str(ALERT_ID), "chu-a", "icu", "p-1", "spo2_low", "acknowledged")
    return asyncio.run(
        resolve_unresolved_alerts(
            cast(Any, _Database(alert)), cast(AlertPublisher, publisher), [listed],
            reason="Kafka rebuilt",
        )
    )  # fmt: skip


def test_resolve_all_resolves_an_acknowledged_alert_with_the_reason() -> None:
    publisher = _Publisher()
    done = _recover(_alert(state="acknowledged"), publisher)
    assert [a.alert_id for a in done.resolved] == [str(ALERT_ID)] and done.by_tenant() == {
        "chu-a": 1
    }
    (event,) = publisher.events
    assert event.kind is AlertEventKind.RESOLVED and event.actor == RECOVERY_ACTOR
    assert event.message == f"resolved by {RECOVERY_ACTOR}: Kafka rebuilt"


def test_resolve_all_skips_an_alert_resolved_meanwhile_and_stops_when_kafka_is_down() -> None:
    for gone in (_alert(state="resolved"), None):
        publisher = _Publisher()
        done = _recover(gone, publisher)
        assert done.resolved == () and done.already_resolved == (str(ALERT_ID),)
        assert publisher.events == []
    with pytest.raises(ApiError, match="broker unreachable"):
        _recover(_alert(), _Unreachable())
