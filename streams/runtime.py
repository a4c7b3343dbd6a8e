"""The Kafka and SQL side of ``streams``: the Faust worker, the database sink, the caches
they keep in step with the database, consumer lag and true end offsets.

Importing this module imports faust, aiokafka and psycopg; the pure core is ``streams``.
"""

from __future__ import annotations

from ._app import APP_IDS, build_app
from ._changelog import DETECTOR_STATE_CHANGELOG, detector_open_alerts
from ._directory import DeviceDirectory, RegistrySource
from ._lag import consumer_lag
from ._offsets import true_end_offsets
from ._outbox import OUTBOX_KEY
from ._sink import ALERTS_GROUP_ID as SINK_ALERTS_GROUP_ID
from ._sink import GROUP_ID as SINK_GROUP_ID
from ._sink import SinkCounters, SinkRows, rows_from_records, run_sink, sink_lanes
from ._threshold_book import OverrideSource, ThresholdBook

__all__ = [
    # the worker (validate and detect roles) and its Kafka consumer groups
    "APP_IDS",
    "build_app",
    "OUTBOX_KEY",
    # what the detectors hold open (their state's changelog)
    "DETECTOR_STATE_CHANGELOG",
    "detector_open_alerts",
    # the sink: readings and dead letters, and alert events in a group of their own
    "SINK_ALERTS_GROUP_ID",
    "SINK_GROUP_ID",
    "SinkCounters",
    "SinkRows",
    "rows_from_records",
    "run_sink",
    "sink_lanes",
    # caches kept in step with the database
    "DeviceDirectory",
    "OverrideSource",
    "RegistrySource",
    "ThresholdBook",
    # offsets
    "consumer_lag",
    "true_end_offsets",
]
