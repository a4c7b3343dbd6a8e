"""``streams.runtime`` is the public door to the Kafka and SQL side of ``streams``."""

from __future__ import annotations

import inspect

import streams
from streams import runtime


def test_runtime_exports_existing_unique_names_defined_in_streams() -> None:
    assert len(runtime.__all__) == len(set(runtime.__all__))
    assert all(hasattr(runtime, name) for name in runtime.__all__)
    foreign = [
        name
        for name in runtime.__all__
        if (inspect.isclass(value := getattr(runtime, name)) or inspect.isfunction(value))
        and not value.__module__.startswith("streams._")
    ]
    assert foreign == []


def test_runtime_and_pure_core_export_different_names() -> None:
    """One public place per name: the pure core does not re-export the runtime, or back."""
    assert set(runtime.__all__).isdisjoint(streams.__all__)


def test_runtime_names_for_the_front_door() -> None:
    assert runtime.APP_IDS == {"validate": "veille-validate", "detect": "veille-detect"}
    assert runtime.SINK_GROUP_ID == "veille-sink"
