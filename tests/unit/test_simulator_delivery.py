"""Duplicates and late messages occur at the configured rates, seen in the output alone."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from devices.simulator import DeliveryRates, Simulation, SimulationConfig


def _observed(simulation: Simulation) -> tuple[int, int, int]:
    """(messages, repeats of earlier bytes, messages behind a later one of their device)."""
    seen: set[tuple[str, bytes]] = set()
    newest: dict[str, int] = {}
    messages = duplicates = late = 0
    for _, topic, payload, _ in simulation.messages():
        messages += 1
        if (topic, payload) in seen:
            duplicates += 1
            continue
        seen.add((topic, payload))
        body = orjson.loads(payload)
        seq = body["readings"][0]["seq"] if "readings" in body else body["seq"]
        if seq < newest.get(topic, -1):
            late += 1
        newest[topic] = max(seq, newest.get(topic, -1))
    return messages, duplicates, late


@pytest.mark.parametrize("rate", [0.01, 0.05])
def test_duplicates_and_reordering_follow_the_configured_rates(rate: float) -> None:
    config = SimulationConfig(
        patients=40,
        minutes=30,
        seed=11,
        delivery=DeliveryRates(duplicate=rate, out_of_order=rate),
    )
    messages, duplicates, late = _observed(Simulation(config))
    originals = messages - duplicates
    assert originals > 4000
    assert 0.7 * rate < duplicates / originals < 1.3 * rate
    # Only a message with a later one of its own device can be overtaken: a little under.
    assert 0.5 * rate < late / originals < 1.3 * rate


def test_a_clean_network_delivers_each_message_once_in_order() -> None:
    config = SimulationConfig(
        patients=10, minutes=20, seed=2, delivery=DeliveryRates(duplicate=0, out_of_order=0)
    )
    _, duplicates, late = _observed(Simulation(config))
    assert (duplicates, late) == (0, 0)


def test_duplicates_repeat_the_exact_bytes_on_the_same_topic() -> None:
    config = SimulationConfig(
        patients=10, minutes=20, seed=4, delivery=DeliveryRates(duplicate=0.1, out_of_order=0)
    )
    deliveries = list(Simulation(config).deliveries())
    originals = Counter((d.topic, d.payload) for d in deliveries if d.anomaly is None)
    copies = [d for d in deliveries if d.anomaly == "duplicate"]
    assert copies
    assert all(originals[(d.topic, d.payload)] == 1 for d in copies)
