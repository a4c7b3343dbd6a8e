"""The detector's outbox: alert events stay in the patient's state until Kafka confirms them.

A detector writes the patient's new state to its Faust table (whose changelog is what a
restarted or new owner recovers) and sends the alert events the batch produced. The two are
separate Kafka writes: a detector killed between them can leave a changelog that already
holds the alert as open while the ``opened`` event never reached Kafka, and the batch,
read again, no longer produces it (its readings are not newer than the state's). Measured:
``kill-detector`` lost 11 alerts in one of five full runs before this module.

So the events go into the state first (``OUTBOX_KEY``), in the same table write, and leave
it only once this process saw Kafka confirm them. Whatever a state recovered from the
changelog still holds was never confirmed to this process: it is sent again (alert events
are idempotent downstream: same alert id, kind and time) at the patient's next batch, or
by the detector's timer for patients that send nothing more.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from devices import AlertEvent

from ._detect import PatientState

__all__ = ["OUTBOX_KEY", "Outbox", "event_key"]

OUTBOX_KEY = "o:outbox"


def event_key(event: AlertEvent) -> str:
    return f"{event.alert_id}|{event.kind.value}|{event.at_us}"


def _read(state: PatientState) -> list[AlertEvent]:
    slot = state.get(OUTBOX_KEY)
    if slot is None:
        return []
    return [AlertEvent.from_json(raw.encode()) for raw in orjson.loads(str(slot["events"]))]


def _write(state: PatientState, events: list[AlertEvent]) -> None:
    if events:
        encoded = [e.to_json().decode() for e in events]
        state[OUTBOX_KEY] = {"events": orjson.dumps(encoded).decode()}
    else:
        state.pop(OUTBOX_KEY, None)


class Outbox:
    """What this process has sent (``False``) and seen confirmed (``True``), by event key."""

    def __init__(self) -> None:
        self._sent: dict[str, bool] = {}

    def stage(self, state: PatientState, new: list[AlertEvent]) -> list[AlertEvent]:
        """Put ``new`` in the state's outbox, drop what Kafka confirmed, and return what to
        send now: ``new`` and any event this process never sent (recovered from the
        changelog)."""
        kept: list[AlertEvent] = []
        to_send: list[AlertEvent] = []
        for event in _read(state):
            key = event_key(event)
            confirmed = self._sent.get(key)
            if confirmed:
                del self._sent[key]
                continue
            kept.append(event)
            if confirmed is None:
                to_send.append(event)
        _write(state, kept + new)
        to_send += new
        for event in to_send:
            self._sent[event_key(event)] = False
        return to_send

    def unsent(self, state: PatientState) -> list[AlertEvent]:
        """Events of the state's outbox this process never sent; now marked as sent."""
        found = [e for e in _read(state) if event_key(e) not in self._sent]
        for event in found:
            self._sent[event_key(event)] = False
        return found

    def confirmed(self, events: list[AlertEvent]) -> None:
        for event in events:
            key = event_key(event)
            if key in self._sent:
                self._sent[key] = True

    def settled(self, event: AlertEvent, sent: asyncio.Future[Any]) -> None:
        """Done-callback of a send: confirmed, or unknown again so that it is sent again."""
        if sent.cancelled() or sent.exception() is not None:
            self._sent.pop(event_key(event), None)
        else:
            self.confirmed([event])

    def forget(self, present: set[str]) -> None:
        """Drop confirmed events no outbox holds any more (``present``: every outbox's keys),
        so the record of a patient who sends nothing more does not stay for ever."""
        for key in [k for k, done in self._sent.items() if done and k not in present]:
            del self._sent[key]

    def keys_in(self, state: PatientState) -> set[str]:
        return {event_key(e) for e in _read(state)}

    def __len__(self) -> int:
        return len(self._sent)
