"""The detector's outbox: an alert event stays in the patient's state until this process saw
Kafka confirm it, and a state recovered with unconfirmed events gets them sent again."""

from __future__ import annotations

import asyncio

import orjson

from devices import AlertEvent, AlertEventKind, Priority
from streams._detect import PatientState
from streams._outbox import OUTBOX_KEY, Outbox


def _event(
    alert_id: str, kind: AlertEventKind = AlertEventKind.OPENED, at_us: int = 1
) -> AlertEvent:
    return AlertEvent(alert_id, kind, "t", "icu", "p", "spo2_low", "spo2", Priority.HIGH, at_us,
                      85.0, "spo2 85 is below 90")  # fmt: skip


def _through_changelog(state: PatientState) -> PatientState:
    """What a restarted detector recovers: the state as the table stored it."""
    recovered: PatientState = orjson.loads(orjson.dumps(state))
    return recovered


def test_new_events_are_sent_and_kept_until_confirmed() -> None:
    outbox, state = Outbox(), _empty()
    opened = _event("a1")
    assert outbox.stage(state, [opened]) == [opened]
    assert outbox.keys_in(state) == {"a1|opened|1"}

    assert outbox.stage(state, []) == []  # in flight: kept, not sent twice
    assert outbox.keys_in(state) == {"a1|opened|1"}

    outbox.confirmed([opened])
    assert outbox.stage(state, []) == []
    assert OUTBOX_KEY not in state  # confirmed: gone from the state
    assert len(outbox) == 0


def test_a_restarted_detector_sends_what_the_changelog_holds_unconfirmed() -> None:
    """The crash this exists for: state written with the alert open, event never in Kafka."""
    before_crash, state = Outbox(), _empty()
    opened = _event("a1")
    before_crash.stage(state, [opened])  # then killed before Kafka confirmed the event

    restarted = Outbox()
    recovered = _through_changelog(state)
    resolved = _event("a1", AlertEventKind.RESOLVED, at_us=9)
    assert restarted.stage(recovered, [resolved]) == [opened, resolved]  # in order

    restarted.confirmed([opened, resolved])
    assert restarted.stage(recovered, []) == []
    assert OUTBOX_KEY not in recovered


def test_the_timer_finds_unsent_events_of_a_patient_with_no_new_batch() -> None:
    restarted, state = Outbox(), _through_changelog(_staged_by_another_process())
    [event] = restarted.unsent(state)
    assert event.alert_id == "a1"
    assert restarted.unsent(state) == []  # sent once; not again while in flight


async def test_a_failed_timer_send_is_sent_again_and_a_confirmed_one_leaves() -> None:
    outbox, state = Outbox(), _through_changelog(_staged_by_another_process())
    [event] = outbox.unsent(state)
    failed: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    failed.set_exception(TimeoutError())
    outbox.settled(event, failed)
    assert outbox.unsent(state) == [event]  # unknown again, so sent again

    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    done.set_result(0)
    outbox.settled(event, done)
    assert outbox.stage(state, []) == []
    assert OUTBOX_KEY not in state


def test_forget_drops_only_confirmed_events_no_outbox_holds() -> None:
    outbox, state = Outbox(), _empty()
    a, b = _event("a"), _event("b")
    outbox.stage(state, [a, b])
    outbox.confirmed([a])
    outbox.forget(present=outbox.keys_in(state))
    assert len(outbox) == 2  # a is confirmed but still in the state's outbox
    outbox.forget(present=set())
    assert len(outbox) == 1  # b is in flight: kept whatever the outboxes hold


def _empty() -> PatientState:
    return {}


def _staged_by_another_process() -> PatientState:
    state: PatientState = {}
    Outbox().stage(state, [_event("a1")])
    return state
