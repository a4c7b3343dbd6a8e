"""How far the detector is behind the sink on the readings topic, from their own metrics.

Both consume every readings record: the sink stores it, the detector turns it into alert
events. Stored readings alone (the bench's backlog) say nothing about the detector, which
could fall further behind each second while every reading is stored in time, so a rate at
which it does is not sustained. Its backlog is the readings records the sink has fetched
(``veille_sink_records_consumed_total{topic=<readings>}``) minus those the detector has
handled (``veille_worker_records_consumed_total{role="detect"}``): both counters start with
the processes, so this holds for one pipeline run (a stepper) and costs one loopback scrape
of two endpoints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ._batch_sizes import Samples, sample_sum, scrape_all

__all__ = ["DetectorProgress", "detector_progress", "progress_from"]


@dataclass(frozen=True, slots=True)
class DetectorProgress:
    """One reading of both counters."""

    fetched_by_sink: int
    detected: int

    @property
    def backlog(self) -> int:
        """Readings records the sink has and the detector has not handled yet."""
        return max(self.fetched_by_sink - self.detected, 0)


async def detector_progress(
    metrics_urls: Mapping[str, str], readings_topic: str
) -> DetectorProgress | None:
    """None when either endpoint did not answer (the step then cannot judge the detector)."""
    wanted = {c: url for c, url in metrics_urls.items() if c in ("sink", "detector")}
    scraped = await scrape_all(wanted)
    sink, detector = scraped.get("sink"), scraped.get("detector")
    if sink is None or detector is None:
        return None
    return progress_from(sink, detector, readings_topic)


def progress_from(sink: Samples, detector: Samples, readings_topic: str) -> DetectorProgress:
    fetched = sample_sum(sink, "veille_sink_records_consumed_total", topic=readings_topic)
    detected = sample_sum(detector, "veille_worker_records_consumed_total", role="detect")
    return DetectorProgress(int(fetched), int(detected))
