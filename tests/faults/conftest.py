"""Fault-injection tests: each scenario runs its own real stack and pipeline processes.

``make test`` runs the short form of every scenario once; ``make faults`` (``python -m
tests.faults``) runs the full form several times and writes docs/RELIABILITY.md.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "faults: fault injection against a real stack (kills, stalls, restarts)"
    )
