"""The bench's steps: one fleet whose sequence numbers and metrics go on from the last step,
and the detector's backlog read from the components' own counters."""

from __future__ import annotations

import orjson

from bench._batch_sizes import parse_samples
from bench._progress import progress_from
from bench._sustain import DEVICES, _messages


def _seqs(messages: list[tuple[str, bytes]]) -> dict[str, list[int]]:
    by_device: dict[str, list[int]] = {}
    for _, payload in messages:
        body = orjson.loads(payload)
        readings = body.get("readings", [body])
        by_device.setdefault(body["device_id"], []).extend(r["seq"] for r in readings)
    return by_device


def test_a_later_step_continues_each_devices_sequence_and_metric_cycle() -> None:
    first = _messages("f1s", 1, DEVICES, 2.0, 1_767_225_600_000_000)
    later = _messages("f1s", 1, DEVICES, 2.0, 1_767_225_700_000_000, first_round=2)
    assert _seqs(first)["f1s-0007"] == [1, 2]
    assert _seqs(later)["f1s-0007"] == [3, 4]
    metrics = [orjson.loads(p)["metric"] for _, p in (first + later) if b'"f1s-0007"' in p]
    assert metrics == ["pulse_rate", "spo2", "heart_rate", "respiration_rate"]


def test_uploads_number_their_readings_on_from_the_rounds_already_sent() -> None:
    later = _messages("f1u", 30, DEVICES, 1.0, 1_767_225_700_000_000, first_round=4)
    assert _seqs(later)["f1u-0000"] == list(range(4 * 30 + 1, 5 * 30 + 1))


def test_the_detectors_backlog_is_what_the_sink_fetched_and_it_did_not_handle() -> None:
    sink = parse_samples(
        'veille_sink_rows_written_total{table="readings"} 3000\n'
        'veille_sink_rows_written_total{table="alert_events"} 7\n'
        'veille_sink_records_consumed_total{group="veille-sink",topic="veille.readings"} 120\n'
        'veille_sink_records_consumed_total{group="veille-sink-alerts",topic="veille.alerts"} 900\n'
    )
    detector = parse_samples(
        'veille_worker_records_consumed_total{role="detect"} 100\n'
        'veille_worker_records_consumed_total{role="validate"} 5000\n'
    )
    progress = progress_from(sink, detector, "veille.readings")
    assert (progress.stored, progress.fetched_by_sink, progress.detected) == (3000, 120, 100)
    assert progress.detector_backlog == 20
    ahead = progress_from(
        sink,
        parse_samples('veille_worker_records_consumed_total{role="detect"} 130\n'),
        "veille.readings",
    )
    assert (
        ahead.detector_backlog == 0
    )  # a redelivery after a rebalance counts twice in the detector
