"""What devices send and what it means: payload contract, metric catalogue, wire records.

No I/O here: every other package builds on these definitions.
"""

from __future__ import annotations

from ._dead_letters import DeadLetter, DeadLetterReason
from ._envelope import RawEnvelope, RawMessage
from ._fleet import (
    DEVICE_TYPES,
    Episode,
    Fleet,
    FleetSimulator,
    OutgoingMessage,
    SimDevice,
    build_fleet,
)
from ._identity import pseudonymise
from ._metrics import CATALOGUE, Metric, UnitConversion, metric_named
from ._payloads import PAYLOAD_ADAPTER, BatchPayloadV1, ReadingV1, SinglePayloadV1
from ._readings import ReadingBatch
from ._registry import DeviceBinding
from ._time import datetime_to_us, now_us, us_to_datetime
from ._topics import SUBSCRIPTION_FILTER, DeviceTopic, device_topic, parse_device_topic

__all__ = [
    "CATALOGUE",
    "DEVICE_TYPES",
    "Episode",
    "Fleet",
    "FleetSimulator",
    "OutgoingMessage",
    "SimDevice",
    "build_fleet",
    "PAYLOAD_ADAPTER",
    "SUBSCRIPTION_FILTER",
    "BatchPayloadV1",
    "DeadLetter",
    "DeadLetterReason",
    "DeviceBinding",
    "DeviceTopic",
    "Metric",
    "RawEnvelope",
    "RawMessage",
    "ReadingBatch",
    "ReadingV1",
    "SinglePayloadV1",
    "UnitConversion",
    "datetime_to_us",
    "device_topic",
    "metric_named",
    "now_us",
    "parse_device_topic",
    "pseudonymise",
    "us_to_datetime",
]
