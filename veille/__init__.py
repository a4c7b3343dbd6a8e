"""Veille: the front door (settings, command line, local stack)."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
