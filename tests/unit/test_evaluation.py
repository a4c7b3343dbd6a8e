"""Alert-quality scoring: matching alerts to events, percentiles, the naive baseline, and a
small end-to-end ``veille evaluate`` run that must be deterministic."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from devices import ReadingBatch
from devices.simulator import EVENT_KINDS
from streams import DEFAULT_RULES
from streams._evaluation import (
    GRACE_PERIOD_S,
    AlertScorer,
    NaiveBaseline,
    ObservedAlert,
    TruthEvent,
    alert_reduction,
    matches,
    percentile,
    targets,
)
from veille.errors import VeilleError
from veille.evaluate import EvaluateOptions, run_evaluate

T0 = 1_767_571_200_000_000  # 2026-01-05T00:00:00Z
S = 1_000_000
MIN = 60 * S
ALICE, BOB = "p-alice", "p-bob"
GRACE_US = round(GRACE_PERIOD_S * 1e6)


def event(
    kind: str = "desaturation",
    patient: str = ALICE,
    metrics: Sequence[str] = ("spo2",),
    onset_min: float = 10,
    plateau_min: float = 12,
    end_min: float = 30,
    priority: str = "high",
) -> TruthEvent:
    return TruthEvent(
        patient,
        kind,
        priority,
        frozenset(metrics),
        T0 + round(onset_min * MIN),
        T0 + round(plateau_min * MIN),
        T0 + round(end_min * MIN),
    )


def alert(
    at_s: float,
    patient: str = ALICE,
    rule: str = "spo2_low",
    metric: str = "spo2",
    persistence_s: float = 0.0,
) -> ObservedAlert:
    return ObservedAlert(patient, rule, metric, T0 + round(at_s * S), persistence_s)


# --- matching ------------------------------------------------------------------------------


def test_an_alert_during_the_event_matches_it() -> None:
    assert matches(alert(15 * 60), event(), GRACE_US)


def test_an_alert_for_another_patient_does_not_match() -> None:
    assert not matches(alert(15 * 60, patient=BOB), event(), GRACE_US)


def test_an_alert_on_a_metric_the_event_does_not_change_does_not_match() -> None:
    hr = alert(15 * 60, rule="heart_rate_high", metric="heart_rate")
    assert not matches(hr, event(), GRACE_US)


def test_an_alert_before_onset_does_not_match() -> None:
    assert not matches(alert(10 * 60 - 1), event(), GRACE_US)
    assert matches(alert(10 * 60), event(), GRACE_US)


def test_the_grace_period_after_the_end_is_inclusive_and_bounded() -> None:
    end_s = 30 * 60
    assert matches(alert(end_s + GRACE_PERIOD_S), event(), GRACE_US)
    assert not matches(alert(end_s + GRACE_PERIOD_S + 1), event(), GRACE_US)
    assert not matches(alert(end_s + 1), event(), 0)


def test_a_news2_alert_matches_a_deterioration_only() -> None:
    news2 = alert(15 * 60, rule="news2_high", metric="news2")
    deterioration = event("deterioration", metrics=("respiration_rate", "spo2"))
    assert matches(news2, deterioration, GRACE_US)
    assert not matches(news2, event("desaturation"), GRACE_US)


# --- scoring ------------------------------------------------------------------------------


def test_scorer_counts_hits_misses_and_false_alerts() -> None:
    events = [
        event(),  # detected twice
        event("bradycardia", BOB, ("heart_rate", "pulse_rate"), 100, 101, 110),  # missed
        event("fever", BOB, ("body_temperature",), 200, 240, 300, priority="medium"),  # missed
    ]
    scorer = AlertScorer(events)
    assert scorer.add(alert(13 * 60, persistence_s=30))
    assert scorer.add(alert(12 * 60 + 30, persistence_s=30))  # earlier reading, sent later
    assert not scorer.add(alert(50 * 60))  # after end + grace
    assert not scorer.add(alert(105 * 60, patient=BOB, rule="spo2_low"))  # wrong metric
    assert not scorer.add(alert(105 * 60, patient=BOB, rule="heart_rate_high", metric="x"))
    score = scorer.score(patient_days=2.0)

    assert score.alerts == 5
    assert score.false_alerts == 3
    assert score.false_alerts_per_patient_day == 1.5
    assert dict(score.false_by_rule) == {"heart_rate_high": 1, "spo2_low": 2}
    assert list(score.by_kind) == ["bradycardia", "desaturation", "fever"]
    desat = score.by_kind["desaturation"]
    assert (desat.events, desat.detected, desat.sensitivity) == (1, 1, 1.0)
    assert desat.tta_onset_s == (150.0,)  # first alert by reading time, not by arrival
    assert desat.tta_plateau_s == (30.0,)
    assert desat.tta_after_persistence_s == (0.0,)
    assert score.by_kind["bradycardia"].sensitivity == 0.0
    assert [(e.kind, e.patient) for e in score.missed_high_priority] == [("bradycardia", BOB)]
    assert score.high_priority_tta_after_persistence_s == (0.0,)


def test_score_json_has_the_documented_keys_in_order() -> None:
    scorer = AlertScorer([event()])
    scorer.add(alert(13 * 60))
    data = scorer.score(1.0).to_json()
    assert list(data) == [
        "alerts",
        "by_kind",
        "false_alerts",
        "false_alerts_per_patient_day",
        "false_by_rule",
        "missed_high_priority",
        "high_priority_tta_after_persistence_median_s",
    ]
    assert list(data["by_kind"]["desaturation"])[:7] == [
        "events",
        "detected",
        "sensitivity",
        "tta_onset_median_s",
        "tta_onset_p90_s",
        "tta_plateau_median_s",
        "tta_plateau_p90_s",
    ]
    assert data["by_kind"]["desaturation"]["tta_onset_median_s"] == 180.0


def test_an_alert_in_the_grace_of_one_event_and_the_onset_of_the_next_counts_for_both() -> None:
    first, second = event(end_min=30), event(onset_min=32, plateau_min=33, end_min=40)
    scorer = AlertScorer([first, second])
    assert scorer.add(alert(33 * 60))
    score = scorer.score(1.0)
    assert score.by_kind["desaturation"].detected == 2
    assert score.false_alerts == 0


def test_delivery_delay_is_the_gap_between_reading_and_upload() -> None:
    late = ObservedAlert(ALICE, "spo2_low", "spo2", T0 + 15 * MIN, 0.0, T0 + 15 * MIN + 90 * S)
    scorer = AlertScorer([event()])
    scorer.add(late)
    assert scorer.score(1.0).by_kind["desaturation"].delivery_delay_s == (90.0,)


# --- percentiles and targets ---------------------------------------------------------------


def test_percentile_interpolates_linearly_between_ranks() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 50) == 25.0
    assert percentile(values, 90) == pytest.approx(37.0)
    assert percentile([7.0], 90) == 7.0
    assert percentile([], 50) is None


def test_alert_reduction() -> None:
    assert alert_reduction(1000, 150) == 0.85
    assert alert_reduction(0, 3) is None


def test_targets_need_no_missed_high_priority_event() -> None:
    scorer = AlertScorer([event(), event("hypoglycaemia", BOB, ("blood_glucose",))])
    scorer.add(alert(12 * 60 + 20))
    verdict = targets(scorer.score(1.0), 0.95)
    assert verdict == {
        "high_priority_sensitivity_1": False,
        "median_tta_le_30s_after_persistence": True,
        "reduction_ge_80pct": False,  # enough reduction, but an event was missed
    }


def test_targets_met() -> None:
    scorer = AlertScorer([event()])
    scorer.add(alert(12 * 60 + 50, persistence_s=30))  # 20 s after the persistence window
    assert all(targets(scorer.score(1.0), 0.8).values())
    assert not targets(scorer.score(1.0), 0.79)["reduction_ge_80pct"]


def test_slow_alerts_miss_the_time_target() -> None:
    scorer = AlertScorer([event()])
    scorer.add(alert(12 * 60 + 31))
    assert not targets(scorer.score(1.0), 0.9)["median_tta_le_30s_after_persistence"]


# --- naive baseline ------------------------------------------------------------------------


def batch(readings: Sequence[tuple[str, float | None, float]]) -> ReadingBatch:
    return ReadingBatch(
        "chu-sim",
        "cardiology",
        ALICE,
        "ox-1-00000",
        tuple(m for m, _, _ in readings),
        tuple(v for _, v, _ in readings),
        tuple(T0 + round(t * S) for _, _, t in readings),
        tuple(range(len(readings))),
        tuple(T0 + round(t * S) for _, _, t in readings),
    )


def test_baseline_alerts_once_per_breaching_reading_and_counts_no_signal_as_zero() -> None:
    naive = NaiveBaseline(DEFAULT_RULES)
    readings = batch(
        [
            ("spo2", 95.0, 0),  # fine
            ("spo2", 85.0, 15),  # spo2_low
            ("spo2", 85.0, 30),  # again: no persistence, no deduplication
            ("spo2", None, 45),  # probe off: 0 < 90
            ("heart_rate", None, 45),  # 0 < 40: heart_rate_low, not heart_rate_high
            ("pulse_rate", 20.0, 45),  # pulse_rate_low
            ("heart_rate", 150.0, 60),
        ]
    )
    alerts = naive.alerts(readings, skew_us=10 * S, raised_us=T0 + 90 * S)
    assert [a.rule for a in alerts] == [
        "spo2_low",
        "spo2_low",
        "spo2_low",
        "heart_rate_low",
        "pulse_rate_low",
        "heart_rate_high",
    ]
    assert alerts[0].at_us == T0 + 5 * S  # skew removed: the device clock was 10 s ahead
    assert alerts[0].delivery_delay_s == 85.0
    assert all(a.persistence_s == 0.0 for a in alerts)


def test_baseline_scored_like_veille() -> None:
    naive = NaiveBaseline(DEFAULT_RULES)
    scorer = AlertScorer([event()])
    for a in naive.alerts(batch([("spo2", 85.0, 13 * 60), ("spo2", None, 60 * 60)])):
        scorer.add(a)
    score = scorer.score(1.0)
    assert (score.alerts, score.false_alerts) == (2, 1)
    assert score.by_kind["desaturation"].detected == 1


# --- end to end ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_run() -> tuple[int, str]:
    return run_evaluate(EvaluateOptions(seed=3, patients=5, hours=2))


def test_end_to_end_report_is_complete_and_consistent(small_run: tuple[int, str]) -> None:
    code, text = small_run
    report: dict[str, Any] = orjson.loads(text)
    assert code == 0
    assert list(report)[:10] == [
        "seed",
        "patients",
        "hours",
        "readings",
        "messages",
        "events",
        "veille",
        "baseline",
        "alert_reduction",
        "targets",
    ]
    assert (report["seed"], report["patients"], report["hours"]) == (3, 5, 2)
    assert report["readings"] > report["messages"] > 0
    assert report["dead_letters"] == 0  # the simulator sends only valid readings
    # five patients: one event each, the first five kinds (hypoglycaemia needs a glucose
    # device, deterioration a respiration rate, and each patient's first event is unique)
    assert report["events"] == 5
    for side in ("veille", "baseline"):
        score = report[side]
        assert sum(k["events"] for k in score["by_kind"].values()) == report["events"]
        assert score["false_alerts"] == sum(score["false_by_rule"].values())
        assert score["false_alerts"] <= score["alerts"]
        for kind in score["by_kind"].values():
            assert 0 <= kind["detected"] <= kind["events"]
    assert set(report["veille"]["by_kind"]) == {
        "bradycardia",
        "desaturation",
        "fever",
        "hypotension",
        "tachycardia",
    }
    high = sum(
        k["events"] - k["detected"]
        for name, k in report["veille"]["by_kind"].items()
        if EVENT_KINDS[name].priority == "high"
    )
    assert len(report["veille"]["missed_high_priority"]) == high
    assert report["baseline"]["alerts"] > report["veille"]["alerts"]
    veille, baseline = report["veille"]["alerts"], report["baseline"]["alerts"]
    assert report["alert_reduction"] == round((baseline - veille) / baseline, 4)
    assert set(report["targets"]) == {
        "high_priority_sensitivity_1",
        "median_tta_le_30s_after_persistence",
        "reduction_ge_80pct",
    }
    assert report["targets"]["high_priority_sensitivity_1"] == (high == 0)


def test_same_seed_gives_identical_json(small_run: tuple[int, str], tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    again = run_evaluate(EvaluateOptions(seed=3, patients=5, hours=2, out=out))
    assert again == small_run
    assert out.read_text() == small_run[1]


def test_invalid_options_are_veille_errors() -> None:
    with pytest.raises(VeilleError, match="--patients"):
        run_evaluate(EvaluateOptions(seed=1, patients=0, hours=1))
    with pytest.raises(VeilleError, match="cannot simulate"):
        run_evaluate(EvaluateOptions(seed=1, patients=2, hours=0.001))
