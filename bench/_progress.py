"""How far the pipeline is: readings stored, and how far the detector is behind the sink,
from the components' own metrics.

The sink counts the readings it has written once their transaction committed
(``veille_sink_rows_written_total{table="readings"}``): exact at every instant, where
PostgreSQL's statistics (``pg_stat_user_tables``), which a step once read, are published by
each writer about once a second, an error as large as the one second's worth of slack a step
allows its backlog. Both the sink and the detector consume every readings record: the sink
stores it, the detector turns it into alert events. Stored readings alone say nothing about
the detector, which could fall further behind each second while every reading is stored in
time. Its backlog is the readings records the sink has fetched
(``veille_sink_records_consumed_total{topic=<readings>}``) minus those the detector has
handled (``veille_worker_records_consumed_total{role="detect"}``). Every counter starts with
its process, so this holds for one pipeline run (a stepper) and costs the database nothing:
one loopback scrape of two endpoints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ._batch_sizes import Samples, sample_sum, scrape_all

__all__ = ["PipelineProgress", "pipeline_progress", "progress_from"]


@dataclass(frozen=True, slots=True)
class PipelineProgress:
    """One reading of the counters."""

    stored: int  # readings rows the sink has committed
    fetched_by_sink: int  # readings records
    detected: int  # readings records the detector has handled

    @property
    def detector_backlog(self) -> int:
        """Readings records the sink has and the detector has not handled yet."""
        return max(self.fetched_by_sink - self.detected, 0)


async def pipeline_progress(
    metrics_urls: Mapping[str, str], readings_topic: str
) -> PipelineProgress | None:
    """None when either endpoint did not answer."""
    wanted = {c: url for c, url in metrics_urls.items() if c in ("sink", "detector")}
    scraped = await scrape_all(wanted)
    sink, detector = scraped.get("sink"), scraped.get("detector")
    if sink is None or detector is None:
        return None
    return progress_from(sink, detector, readings_topic)


def progress_from(sink: Samples, detector: Samples, readings_topic: str) -> PipelineProgress:
    stored = sample_sum(sink, "veille_sink_rows_written_total", table="readings")
    fetched = sample_sum(sink, "veille_sink_records_consumed_total", topic=readings_topic)
    detected = sample_sum(detector, "veille_worker_records_consumed_total", role="detect")
    return PipelineProgress(int(stored), int(fetched), int(detected))
