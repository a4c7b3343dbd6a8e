"""What devices send and what it means: payload contract, metric catalogue, wire records.

No I/O here: every other package builds on these definitions.
"""

from __future__ import annotations

from ._alerts import PRIORITY_ORDER, AlertEvent, AlertEventKind, Priority, alert_id_for
from ._dead_letters import DeadLetter, DeadLetterReason
from ._device_types import DEVICE_TYPES, DeviceType, device_type_named
from ._envelope import (
    CarriedMessage,
    RawEnvelope,
    RawMessage,
    encode_raw_record,
    encode_raw_records,
    envelopes_of,
)
from ._identity import pseudonymise
from ._metrics import ACVPU_CODES, CATALOGUE, Metric, UnitConversion, metric_named
from ._partitions import KeyPartitioner
from ._payloads import PAYLOAD_ADAPTER, BatchPayloadV1, ReadingV1, SinglePayloadV1
from ._readings import (
    ReadingBatch,
    ReadingsRecord,
    batches_of,
    encode_readings_record,
    encode_readings_records,
    read_readings_record,
)
from ._record_size import RECORD_BUDGET_BYTES
from ._registry import DeviceBinding, DeviceStatus, RegistryEntry
from ._replay import MIMIC_NUMERICS_COLUMNS, RecordedRow, payload_for_row, read_numerics
from ._time import datetime_to_us, now_us, us_to_datetime
from ._topics import SUBSCRIPTION_FILTER, DeviceTopic, device_topic, parse_device_topic

__all__ = [
    "MIMIC_NUMERICS_COLUMNS",
    "RecordedRow",
    "payload_for_row",
    "read_numerics",
    "PRIORITY_ORDER",
    "AlertEvent",
    "AlertEventKind",
    "Priority",
    "alert_id_for",
    "CATALOGUE",
    "ACVPU_CODES",
    "DEVICE_TYPES",
    "DeviceType",
    "device_type_named",
    "PAYLOAD_ADAPTER",
    "SUBSCRIPTION_FILTER",
    "BatchPayloadV1",
    "DeadLetter",
    "DeadLetterReason",
    "DeviceBinding",
    "DeviceStatus",
    "RegistryEntry",
    "DeviceTopic",
    "Metric",
    "CarriedMessage",
    "KeyPartitioner",
    "RawEnvelope",
    "RawMessage",
    "ReadingBatch",
    "ReadingV1",
    "SinglePayloadV1",
    "UnitConversion",
    "batches_of",
    "read_readings_record",
    "ReadingsRecord",
    "datetime_to_us",
    "encode_raw_record",
    "encode_raw_records",
    "encode_readings_record",
    "encode_readings_records",
    "RECORD_BUDGET_BYTES",
    "envelopes_of",
    "device_topic",
    "metric_named",
    "now_us",
    "parse_device_topic",
    "pseudonymise",
    "us_to_datetime",
]
