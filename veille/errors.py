"""Veille's exception tree: one root so callers can catch everything Veille raises.

::

    VeilleError
    +-- ConfigurationError        settings missing or inconsistent
    +-- StackError                the local stack could not start, or a service died
    |   +-- MissingDependencyError a system program (mosquitto, initdb, node) is absent
    +-- StoreError                the database refused a write or a migration
    +-- BackupError               pgBackRest refused or failed, or a restored copy differs
    +-- IncompatibleLibraryError  an installed library is not the version Veille patches
"""

from __future__ import annotations

__all__ = [
    "BackupError",
    "ConfigurationError",
    "IncompatibleLibraryError",
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


class BackupError(VeilleError):
    """A backup, restore or verification failed or was refused (wrong key, damaged
    repository, a restored copy that differs); the message says which and what to do."""


class IncompatibleLibraryError(VeilleError):
    """A library Veille patches is outside its pinned range, or lacks a member the patch
    replaces; the message names the pin (pyproject.toml) and the member."""
