"""``devices.simulator`` and ``veille.simulate`` export what they mean to (as httpx tests)."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator

import pytest

from devices.simulator import Simulation, SimulationConfig

MODULES = ["devices.simulator", "veille.simulate"]


@pytest.mark.parametrize("name", MODULES)
def test_all_lists_existing_unique_names(name: str) -> None:
    module = importlib.import_module(name)
    assert all(hasattr(module, member) for member in module.__all__)
    assert len(module.__all__) == len(set(module.__all__))


def test_public_classes_and_functions_of_private_modules_are_exported() -> None:
    package = importlib.import_module("devices.simulator")
    unlisted = [
        member
        for member, value in vars(package).items()
        if not member.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", "").startswith("devices.simulator._")
        and member not in package.__all__
    ]
    assert unlisted == []


def test_simulation_api_is_lazy_and_yields_publish_tuples() -> None:
    simulation = Simulation(SimulationConfig(patients=200, minutes=24 * 60, seed=1))
    messages = simulation.messages()
    assert isinstance(messages, Iterator)
    send_at_us, topic, payload, readings = next(messages)  # no need to generate the day first
    assert send_at_us >= simulation.start_us and topic.startswith("veille/v1/chu-sim/")
    assert isinstance(payload, bytes) and readings >= 1
