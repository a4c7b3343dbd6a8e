"""Benchmarks for Veille: ``make bench`` runs them all and writes docs/BENCHMARKS.md.

They measure the "records carry batches" decision: CPU per reading on the pure path, database
write throughput, and throughput and latency through the real pipeline. The machine is shared
and noisy, so every figure is a median over repetitions and comparisons are ratios from the
same run; nothing here belongs in a test assertion.
"""

from __future__ import annotations

from ._cli import main

__all__ = ["main"]
