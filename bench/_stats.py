"""Medians and spreads: on a shared 2-core machine a single timing says little."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

__all__ = ["median", "relative_spread"]


def median(samples: Sequence[float]) -> float:
    if not samples:
        raise ValueError("no samples to take a median of")
    return float(statistics.median(samples))


def relative_spread(samples: Sequence[float]) -> float:
    """``(max - min) / median``: shows how noisy the repetitions were."""
    middle = median(samples)
    return (max(samples) - min(samples)) / middle if middle else 0.0
