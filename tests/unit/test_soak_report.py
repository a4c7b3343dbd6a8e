"""The soak's verdict: medians of the first minute after the warm-up against the last minute."""

from __future__ import annotations

import pytest

from bench._soak import SoakResult, _report


def _ramp(start_kib: int, end_kib: int, seconds: float) -> list[tuple[float, int]]:
    steps = int(seconds // 10) + 1
    return [(i * 10.0, start_kib + (end_kib - start_kib) * i // (steps - 1)) for i in range(steps)]


def test_growth_compares_window_medians_not_the_first_and_last_samples() -> None:
    # Starts at 100 MiB, reaches 200 MiB during the warm-up, then stays there.
    points = [(float(t), 102_400 if t < 30 else 204_800) for t in range(0, 601, 10)]
    result = SoakResult(rate=700, seconds=600, samples={"detector": points})
    assert result.windows_kib("detector") == (204_800, 204_800)
    assert result.growth_pct("detector") == 0.0
    row = next(line for line in _report(result).splitlines() if line.startswith("| detector"))
    assert row == "| detector | 100 | 200 | 200 | 200 | +0.0 % | yes |"


def test_a_process_that_keeps_growing_is_not_flat() -> None:
    result = SoakResult(rate=700, seconds=600, samples={"sink": _ramp(102_400, 204_800, 600)})
    growth = result.growth_pct("sink")
    # medians 114.2 MiB (t 60-110 s) and 195.0 MiB (t 540-600 s)
    assert growth == pytest.approx(70.8, abs=0.1)
    row = next(line for line in _report(result).splitlines() if line.startswith("| sink"))
    assert row.endswith("| **no** |")


def test_too_short_a_run_has_no_verdict() -> None:
    result = SoakResult(rate=700, seconds=600, samples={"gateway": [(0.0, 1024), (20.0, 1024)]})
    assert result.growth_pct("gateway") is None
    row = next(line for line in _report(result).splitlines() if line.startswith("| gateway"))
    assert row == "| gateway | 1 | - | - | 1 | - | - |"
