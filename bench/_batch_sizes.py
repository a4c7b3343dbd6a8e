"""How full the pipeline's gateway bursts, worker groups and sink batches are at the rate it
sustains, from the components' own metrics scraped before and after the 60 s hold.

Each component the bench starts serves Prometheus metrics (``ComponentProcess.metrics_url``).
The differences between the two scrapes give, for the hold alone (the pipeline is idle when
the first is taken and has drained when the second is):

- the gateway's bursts (``veille_gateway_burst_messages``: count, and messages as its sum) and
  the raw records it sent (``veille_gateway_records_sent_total``);
- the validator's and the detector's groups and their input records
  (``veille_worker_group_records{role}``: count and sum); the validator's input records are
  raw records, the detector's are readings records;
- the sink's batches and their records (``veille_sink_batch_records``: readings, alert and
  dead-letter records alike).

Messages per record of a stage are the messages the gateway received over the records that
stage took in; a stage's messages per group is its mean records per group times that.
``bench/_telemetry_cost.py`` shares the instrumentation's costs out with these figures.

The second scrape is taken once every reading of the hold is stored; the detector reads the
readings topic beside the sink, and one still behind then would have its last groups missed
(its records per group barely change, its messages per record would read a little high).

A component whose metrics cannot be read leaves the sizes unmeasured (None), and the bench
goes on.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

__all__ = [
    "COMPONENTS",
    "BatchSizes",
    "Samples",
    "StageSize",
    "parse_samples",
    "sample_sum",
    "scrape_all",
    "sizes_between",
]

log = logging.getLogger(__name__)

COMPONENTS = ("gateway", "validator", "detector", "sink")
SCRAPE_TIMEOUT_S = 5.0  # a loopback scrape answers in milliseconds; a stuck one must not stall

# Sample name and its labels, sorted -> value.
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass(frozen=True, slots=True)
class StageSize:
    """One stage's bursts, groups or batches over the hold."""

    groups: float  # bursts, groups or batches
    records: float  # the Kafka records they held (raw, readings, or whatever the sink read)
    messages: float  # device messages the gateway received over the same hold

    @property
    def records_per_group(self) -> float:
        return self.records / self.groups

    @property
    def messages_per_record(self) -> float:
        return self.messages / self.records

    @property
    def messages_per_group(self) -> float:
        return self.records_per_group * self.messages_per_record


@dataclass(frozen=True, slots=True)
class BatchSizes:
    """The four stages' mean sizes over one hold."""

    gateway: StageSize  # records: the raw records of the bursts
    validator: StageSize  # records: raw records
    detector: StageSize  # records: readings records
    sink: StageSize  # records: readings, alert-event and dead-letter records

    @property
    def messages_per_burst(self) -> float:
        return self.gateway.messages_per_group


def parse_samples(text: str) -> Samples:
    """Every sample of a Prometheus text exposition."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): float(s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample_sum(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` that carry ``labels`` (others may differ)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


def _scrape(url: str) -> Samples | None:
    if not url.startswith(("http://127.0.0.1:", "http://localhost:")):
        log.warning("not scraping %s: the bench reads loopback endpoints only", url)
        return None
    try:  # an http:// URL on loopback, checked above
        with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT_S) as response:  # noqa: S310
            return parse_samples(response.read().decode())
    except (OSError, ValueError) as exc:
        log.warning("no metrics from %s (%s): batch sizes not measured", url, exc)
        return None


async def scrape_all(urls: Mapping[str, str]) -> dict[str, Samples | None]:
    """Each component's samples, None for a component whose endpoint did not answer or that
    serves no metrics (absent from ``urls``)."""
    scraped = await asyncio.gather(*(asyncio.to_thread(_scrape, urls[c]) for c in urls))
    found = dict(zip(urls, scraped, strict=True))
    return {c: found.get(c) for c in COMPONENTS}


def _histogram(before: Samples, after: Samples, name: str, **labels: str) -> tuple[float, float]:
    """Observations and their sum between two scrapes."""

    def delta(suffix: str) -> float:
        series = name + suffix
        return sample_sum(after, series, **labels) - sample_sum(before, series, **labels)

    return delta("_count"), delta("_sum")


def sizes_between(
    before: Mapping[str, Samples | None], after: Mapping[str, Samples | None]
) -> BatchSizes | None:
    """The mean sizes between two :func:`scrape_all`; None if a component was not scraped or a
    stage saw nothing (no message went through it)."""
    b, a = {}, {}
    for name in COMPONENTS:
        first, second = before.get(name), after.get(name)
        if first is None or second is None:
            return None
        b[name], a[name] = first, second
    bursts, messages = _histogram(b["gateway"], a["gateway"], "veille_gateway_burst_messages")
    sent = "veille_gateway_records_sent_total"
    raw = sample_sum(a["gateway"], sent) - sample_sum(b["gateway"], sent)
    stages = [
        (bursts, raw),
        _histogram(b["validator"], a["validator"], "veille_worker_group_records", role="validate"),
        _histogram(b["detector"], a["detector"], "veille_worker_group_records", role="detect"),
        _histogram(b["sink"], a["sink"], "veille_sink_batch_records"),
    ]
    if messages <= 0 or any(groups <= 0 or records <= 0 for groups, records in stages):
        log.warning("a stage saw no message between the scrapes: batch sizes not measured")
        return None
    return BatchSizes(*(StageSize(groups, records, messages) for groups, records in stages))
