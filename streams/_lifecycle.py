"""Alert lifecycle on a patient's detector state: escalation, acknowledgement, resolution.

Pure functions. The detector opens and auto-resolves alerts (``streams._detect``); a timer
asks :func:`due_escalations` which open, unacknowledged alerts have waited too long; every
lifecycle event read back from ``veille.alerts`` goes through :func:`apply_alert_event`.
Escalation events are dated at their due time (raised time + n x delay), not at the moment
the timer noticed, so a timer that fires twice emits the same event twice and the history
keeps it once.
"""

from __future__ import annotations

from dataclasses import dataclass

from devices import PRIORITY_ORDER, AlertEvent, AlertEventKind, Priority

from ._detect import PatientState

__all__ = ["EscalationPolicy", "apply_alert_event", "due_escalations", "open_alerts"]


@dataclass(frozen=True, slots=True, kw_only=True)
class EscalationPolicy:
    after_s: float = 300.0  # unacknowledged for 5 minutes: raise priority, page the next responder
    max_level: int = 2


def raised(priority: Priority) -> Priority:
    """One step up: an unanswered low alert becomes medium, a medium one high."""
    return Priority.HIGH if priority is not Priority.LOW else Priority.MEDIUM


def open_alerts(state: PatientState) -> dict[str, dict[str, int | float | str | None]]:
    return {key[2:]: value for key, value in state.items() if key.startswith("a:")}


def due_escalations(state: PatientState, now_us: int, policy: EscalationPolicy) -> list[AlertEvent]:
    events = []
    delay_us = int(policy.after_s * 1e6)
    for alert_id, a in open_alerts(state).items():
        level = int(a["level"] or 0)
        if a["acked"] or level >= policy.max_level:
            continue
        due_us = int(a["raised_us"] or 0) + (level + 1) * delay_us
        if now_us < due_us:
            continue
        priority = raised(Priority(str(a["priority"])))
        minutes = (level + 1) * policy.after_s / 60
        events.append(
            AlertEvent(
                alert_id,
                AlertEventKind.ESCALATED,
                str(a["tenant"]),
                str(a["care_unit"]),
                str(a["patient"]),
                str(a["rule"]),
                str(a["metric"]),
                priority,
                due_us,
                float(a["value"] or 0.0),
                f"not acknowledged after {minutes:g} min: escalated to {priority.value}",
                None,
                level + 1,
            )  # fmt: skip
        )
    return events


def apply_alert_event(state: PatientState, event: AlertEvent) -> bool:
    """Apply a lifecycle event read from ``veille.alerts``; True if the state changed.

    Openings and auto-resolutions are the detector's own and already applied.
    """
    a = state.get(f"a:{event.alert_id}")
    if a is None:
        return False
    if event.kind is AlertEventKind.ESCALATED:
        if event.level <= int(a["level"] or 0):
            return False
        current = Priority(str(a["priority"]))
        if PRIORITY_ORDER[event.priority] > PRIORITY_ORDER[current]:
            a["priority"] = event.priority.value
        a["level"] = event.level
        return True
    if event.kind is AlertEventKind.ACKNOWLEDGED:
        changed = not a["acked"]
        a["acked"] = 1
        return changed
    if event.kind is AlertEventKind.RESOLVED and event.actor is not None:
        # Resolved by a clinician: the episode is closed; if the condition persists, the
        # detector raises a new alert after the persistence window.
        state.pop(f"a:{event.alert_id}")
        rule_state = state.get(f"r:{a['rule']}")
        if rule_state is not None and rule_state.get("alert") == event.alert_id:
            rule_state.update(breaches=0, clears=0, start_us=None, alert=None)
        return True
    return False
