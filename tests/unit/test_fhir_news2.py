"""Which readings the export scores with NEWS2: the newest usable one per parameter, as the
worker does (stale values and no-signal readings left out)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from clinic._fhir import ReadingRecord
from clinic._fhir_export import NEWS2_FRESHNESS_S, latest_news2
from streams._patient import NEWS2_FRESHNESS_S as WORKER_FRESHNESS_S

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
VITALS = {"respiration_rate": 16, "spo2": 97, "inhaled_oxygen_flow": 0, "systolic_bp": 120,
          "heart_rate": 72, "consciousness": 0, "body_temperature": 37.0}  # fmt: skip


def r(metric: str, value: float | None, minutes: float = 0, seq: int = 1) -> ReadingRecord:
    return ReadingRecord(measured_at=T0 + timedelta(minutes=minutes), device_id="d-1", metric=metric,
                         value=value, seq=seq)  # fmt: skip


def test_the_freshness_window_is_the_workers() -> None:
    assert NEWS2_FRESHNESS_S == WORKER_FRESHNESS_S


def test_scores_the_newest_value_of_each_parameter() -> None:
    readings = [r(m, v) for m, v in VITALS.items()] + [r("respiration_rate", 26, minutes=5, seq=2)]
    news2 = latest_news2(readings)
    assert news2 is not None
    assert news2.score.subscores["respiration_rate"] == 3
    assert news2.score.total == 3
    assert news2.effective == T0 + timedelta(minutes=5)
    assert len(news2.sources) == 7 and r("respiration_rate", 26, minutes=5, seq=2) in news2.sources


def test_no_signal_does_not_replace_the_last_value_and_heart_rate_beats_pulse_rate() -> None:
    readings = [r(m, v) for m, v in VITALS.items()]
    readings += [r("spo2", None, minutes=2, seq=3), r("pulse_rate", 130, minutes=1, seq=4)]
    news2 = latest_news2(readings)
    assert news2 is not None
    assert news2.score.subscores == {"respiration_rate": 0, "spo2": 0, "air_or_oxygen": 0,
                                     "systolic_bp": 0, "pulse": 0, "consciousness": 0,
                                     "temperature": 0}  # fmt: skip
    assert all(s.metric != "pulse_rate" for s in news2.sources)


def test_missing_or_stale_parameters_give_no_score() -> None:
    assert latest_news2([r(m, v) for m, v in VITALS.items() if m != "consciousness"]) is None
    stale = [r(m, v, minutes=-61 if m == "systolic_bp" else 0) for m, v in VITALS.items()]
    assert latest_news2(stale) is None
    assert latest_news2([]) is None
