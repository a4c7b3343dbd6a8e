"""The sink turns Kafka records into database rows; an unreadable record becomes a dead letter."""

from __future__ import annotations

from aiokafka import ConsumerRecord

from devices import (
    AlertEvent,
    AlertEventKind,
    DeadLetter,
    DeadLetterReason,
    Priority,
    ReadingBatch,
    us_to_datetime,
)
from streams._sink import rows_from_records
from veille.settings import Settings

SETTINGS = Settings()
T0 = 1_790_000_000_000_000


def _record(topic: str, value: bytes, offset: int = 0) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(topic, 3, offset, 0, 0, b"k", value, None, 1, len(value), ())


def test_rows_from_each_topic() -> None:
    batch = ReadingBatch("t", "icu", "p-1", "d-1", ("spo2", "body_temperature"), (97.0, 38.5),
                         (T0, T0 + 1), (1, 2), (T0 + 5, T0 + 6))  # fmt: skip
    alert = AlertEvent("a-1", AlertEventKind.OPENED, "t", "icu", "p-1", "spo2_low", "spo2",
                       Priority.HIGH, T0, 85.0, "spo2 85 is below 90")  # fmt: skip
    dead = DeadLetter.build(stage="gateway", reason=DeadLetterReason.UNDECODABLE, detail="x",
                            mqtt_topic="veille/v1/t/d-1/readings", device_id="d-1",
                            received_at_us=T0, raw=b"{")  # fmt: skip
    topics = SETTINGS.topics
    rows = rows_from_records(
        [
            _record(topics.readings, batch.to_json()),
            _record(topics.alerts, alert.to_json()),
            _record(topics.dead_letters, dead.to_json()),
        ],
        SETTINGS,
    )
    assert rows.readings.rows() == [
        (us_to_datetime(T0), "t", "icu", "p-1", "d-1", "spo2", 97.0, "%", 1, us_to_datetime(T0 + 5)),
        (us_to_datetime(T0 + 1), "t", "icu", "p-1", "d-1", "body_temperature", 38.5, "Cel", 2,
         us_to_datetime(T0 + 6)),
    ]  # fmt: skip
    assert [(e.alert_id, e.kind, e.priority, e.at) for e in rows.alert_events] == [
        ("a-1", "opened", "high", us_to_datetime(T0))
    ]
    assert [(d[0], d[2], d[7]) for d in rows.dead_letters] == [
        (dead.dead_letter_id, "undecodable", "{")
    ]


def test_unreadable_record_becomes_a_dead_letter_and_the_rest_still_flows() -> None:
    batch = ReadingBatch("t", "icu", "p-1", "d-1", ("spo2",), (97.0,), (T0,), (1,), (T0,))
    topics = SETTINGS.topics
    records = [
        _record(topics.readings, b"\x00garbage", offset=41),
        _record(topics.readings, batch.to_json(), 42),
    ]
    first = rows_from_records(records, SETTINGS)
    again = rows_from_records(records, SETTINGS)
    assert len(first.readings) == 1
    assert len(first.dead_letters) == 1
    dead_id, stage, reason, detail, _topic, _device, _at, raw = first.dead_letters[0]
    assert (stage, reason) == ("sink", "schema")
    assert "unreadable veille.readings record" in detail
    assert raw == "\\x00garbage"  # NUL made storable
    assert again.dead_letters[0][0] == dead_id  # replay after a crash: same id, one row
