"""The sustained-rate figure of docs/BENCHMARKS.md: stored rate and p99 latency against the
offered rate, one line per payload shape, every step of the run (search, holds, half rate)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display here: render to a file

import matplotlib.pyplot as plt  # noqa: E402

from ._capacity import Capacity  # noqa: E402

__all__ = ["plot_capacity"]


def plot_capacity(capacities: list[Capacity], path: Path) -> None:
    figure, (rates, latency) = plt.subplots(1, 2, figsize=(11, 4.2))
    for capacity in capacities:
        steps = sorted(
            [*capacity.search, *capacity.holds, *([capacity.at_half] if capacity.at_half else [])],
            key=lambda s: s.offered_msg_per_s,
        )
        k = capacity.readings_per_message
        offered = [s.offered_msg_per_s * k for s in steps]
        rates.plot(offered, [s.stored_readings_per_s for s in steps], "o-", label=capacity.shape)
        p99 = [(o, s.latency.stored_p99_ms) for o, s in zip(offered, steps, strict=True)
               if s.latency is not None]  # fmt: skip
        if p99:
            latency.plot(*zip(*p99, strict=True), "o-", label=capacity.shape)
    top = max((s.offered_msg_per_s * c.readings_per_message for c in capacities
               for s in c.search), default=1.0)  # fmt: skip
    rates.plot([0, top], [0, top], ":", color="grey", label="stored = offered")
    rates.set(xlabel="offered readings/s", ylabel="stored readings/s (second half of the step)",
              title="Stored against offered")  # fmt: skip
    latency.set(xlabel="offered readings/s", ylabel="p99 publish -> stored, ms",
                title="Latency (log scale)", yscale="log")  # fmt: skip
    for axes in (rates, latency):
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
