"""Veille's exception tree: one root so callers can catch everything Veille raises.

::

    VeilleError
    +-- ConfigurationError        settings missing or inconsistent
    +-- StackError                the local stack could not start, or a service died
    |   +-- MissingDependencyError a system program (mosquitto, initdb, node) is absent
    +-- StoreError                the database refused a write or a migration
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "MissingDependencyError",
    "StackError",
    "StoreError",
    "VeilleError",
]


class VeilleError(Exception):
    """Root of every error Veille raises on purpose."""


class ConfigurationError(VeilleError):
    """A setting is missing or inconsistent; the message names the VEILLE_ variable."""


class StackError(VeilleError):
    """A local-stack service failed to start or stopped unexpectedly."""


class MissingDependencyError(StackError):
    """A system program the local stack needs is not installed."""


class StoreError(VeilleError):
    """The database refused a migration or a write."""
