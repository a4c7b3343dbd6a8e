"""Section 4 of the benchmark report and its JSON, from made-up steps (no servers)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bench._capacity import Capacity, Ceilings, hold_rates, next_search_rate
from bench._capacity_report import CapacityRun, capacity_json, capacity_section
from bench._kafka_ceiling import KafkaCeiling
from bench._mqtt_ceiling import MqttCeiling
from bench._plot import plot_capacity
from bench._profile import _summary
from bench._sustain import StepResult, clearly_unbounded, trend_growth
from bench._tls_cost import TlsCost

CPU = {"gateway": 100.0, "validator": 50.0, "detector": 100.0, "worker": 150.0, "sink": 10.0, "Kafka (Tansu)": 50.0,
       "MQTT (Mosquitto)": 20.0, "PostgreSQL": 15.0, "generator": 9.0}  # fmt: skip


def step(shape: str, k: int, rate: float, seconds: float, *, sustained: bool) -> StepResult:
    return StepResult(
        shape=shape, readings_per_message=k, offered_msg_per_s=rate, seconds=seconds,
        sent=int(rate * seconds), acked=int(rate * seconds), generator_max_behind_s=0.0,
        stored_readings_per_s=rate * k, backlog_mid=100,
        backlog_end=100 if sustained else 100 + int(3 * rate * k),
        backlog_growth=-20.0 if sustained else 3 * rate * k,
        drained_s=0.5 if sustained else None, cpu_us_per_message=CPU,
    )  # fmt: skip


def single_run() -> CapacityRun:
    capacity = Capacity(
        "single",
        search=[
            step("single", 1, 1000, 20, sustained=True),
            step("single", 1, 1400, 20, sustained=False),
        ],  # fmt: skip
        holds=[step("single", 1, 1000, 60, sustained=True)],
    )
    return CapacityRun(capacity, None)


def test_the_rule_of_a_sustained_step_is_the_bounded_lag() -> None:
    assert step("single", 1, 1000, 20, sustained=True).sustained
    assert not step("single", 1, 1000, 20, sustained=False).sustained
    one_second = step("single", 1, 1000, 20, sustained=True)
    assert replace(one_second, backlog_growth=1000.0).sustained
    assert not replace(one_second, backlog_growth=1001.0).sustained


def test_the_lags_trend_ignores_one_jittering_sample_and_sees_steady_growth() -> None:
    """Run 1 of 2026-12-04 18:24 failed a step on its last sample alone: the detector 0 -> 141
    records behind, handled 0.5 s later. A line through every sample is not fooled by one."""
    flat = [(float(t), 100.0) for t in range(1, 21)]
    jittered = [*flat[:-1], (20.0, 250.0)]  # one late batch at the very end
    assert trend_growth(flat, 20.0) == 0.0
    assert trend_growth(jittered, 20.0) < 60.0  # the two-sample rule saw +150
    growing = [(float(t), 50.0 * t) for t in range(1, 21)]  # 50 readings more each second
    assert trend_growth(growing, 20.0) == pytest.approx(500.0)  # over the second half
    warm_up = [(1.0, 0.0), (2.0, 5_000.0), *flat[4:]]  # the first quarter is left out
    assert trend_growth(warm_up, 20.0) == 0.0
    with pytest.raises(ValueError, match="two times"):
        trend_growth(flat[:3], 20.0)


def test_a_step_stops_early_only_when_its_backlog_clearly_grows_without_bound() -> None:
    """1,000 readings a second offered: the pass mark is 1,000 readings of growth over the
    second half; stopping needs four times that, a backlog of five seconds' worth, the
    step's middle reached and eight samples in the trend."""
    per_s = 1000.0
    kept_up = [(float(t), 1500.0 + (200.0 if t % 2 else -200.0)) for t in range(1, 61)]
    assert not clearly_unbounded(kept_up, 60.0, per_s)
    overloaded = [(float(t), 300.0 * t) for t in range(1, 61)]  # 30 % more than it stores
    assert not clearly_unbounded(overloaded[:29], 60.0, per_s)  # before the middle
    assert clearly_unbounded(overloaded[:30], 60.0, per_s)
    slightly = [(float(t), 2000.0 + 40.0 * t) for t in range(1, 61)]  # fails at the end only
    assert not clearly_unbounded(slightly, 60.0, per_s)
    low = [(float(t), 200.0 * t - 5000.0) for t in range(1, 61)]  # growing, still small
    assert not clearly_unbounded(low[:30], 60.0, per_s)
    assert not clearly_unbounded([(15.0, 0.0), (31.0, 90_000.0)], 60.0, per_s)  # 2 samples
    assert not clearly_unbounded([], 60.0, per_s)


def test_a_step_is_planned_ahead_by_what_building_the_previous_one_took() -> None:
    from bench._sustain import GENERATOR_START_S, _Fleet, _lead_s

    fleet = _Fleet("f1s")
    first = _lead_s(fleet, 5378 * 60, 1)  # half an idle machine's speed, and 8 s
    assert first == pytest.approx(8.0 + 5378 * 60 * (1 / 20_000 + 1 / 200_000))
    fleet.prep_s_per_message = 20e-6  # the previous step built 50,000 messages a second
    assert _lead_s(fleet, 5378 * 60, 1) == pytest.approx(GENERATOR_START_S + 2 * 20e-6 * 5378 * 60)
    assert _lead_s(fleet, 5378 * 60, 1) < first


def test_a_step_stopped_early_is_not_sustained() -> None:
    held = step("single", 1, 1000, 60, sustained=True)
    assert held.sustained
    assert not replace(held, stopped_early_s=31.0).sustained


def test_the_search_goes_up_until_a_step_fails_and_down_when_the_first_one_does() -> None:
    assert next_search_rate([(1000, True)]) == 1400
    halfway = next_search_rate([(1000, True), (1400, False)])
    assert halfway == pytest.approx(1000 * 1.4**0.5)  # one step between the two, then stop
    assert halfway is not None
    assert next_search_rate([(1000, True), (1400, False), (halfway, True)]) is None
    assert next_search_rate([(1000, True), (1400, False), (halfway, False)]) is None
    assert next_search_rate([(1000, False)]) == 1000 / 1.4
    assert next_search_rate([(1000, False), (1000 / 1.4, True)]) is None  # no climb back
    down = [(1000 / 1.4**n, False) for n in range(4)]
    assert next_search_rate(down[:3]) == 1000 / 1.4**3
    assert next_search_rate(down) is None  # three steps below the start at most


def test_holds_go_down_from_the_best_search_rate_by_half_rungs_until_one_holds() -> None:
    rung = 1.4**0.5
    assert hold_rates([(1000, True), (1400, True), (1960, False)]) == pytest.approx(
        [1400, 1400 / rung, 1000]
    )
    halfway = 1400 * rung
    searched = [(1000, True), (1400, True), (1960, False), (halfway, True)]
    assert hold_rates(searched) == pytest.approx([halfway, 1400, 1400 / rung])
    searched[-1] = (halfway, False)
    assert hold_rates(searched) == pytest.approx([1400, 1400 / rung, 1000])
    below = [1000 / 1.4, 1000 / 1.4 / rung, 1000 / 1.4**2]
    assert hold_rates([(1000, False), (1000 / 1.4, True)]) == pytest.approx(below)
    assert hold_rates([(1000, False)]) == []


def test_a_step_is_not_sustained_when_the_detector_falls_behind() -> None:
    """Every reading stored in time, the detector's backlog growing by more than one
    second's worth of records over the second half, or not caught up after the step."""
    kept = replace(
        step("single", 1, 1000, 20, sustained=True), detector_backlog_mid=40,
        detector_backlog_end=90, detector_backlog_growth=50.0, readings_records_per_s=60.0,
        detector_drained_s=1.5,
    )  # fmt: skip
    assert kept.detector_kept_up and kept.sustained
    growing = replace(kept, detector_backlog_end=400, detector_backlog_growth=360.0)
    assert growing.detector_kept_up is False and not growing.sustained
    never_drained = replace(kept, detector_drained_s=None)
    assert never_drained.detector_kept_up is False and not never_drained.sustained
    unknown = replace(kept, detector_backlog_growth=None)
    assert unknown.detector_kept_up is None and unknown.sustained  # judged on storage alone
    # Readings not all stored in time: the detector's drain is not waited for, its trend says.
    unstored = replace(kept, drained_s=None, detector_drained_s=None)
    assert unstored.detector_kept_up and not unstored.sustained
    assert replace(unstored, detector_backlog_growth=360.0).detector_kept_up is False


def test_the_step_table_shows_the_detectors_backlog() -> None:
    behind = replace(
        step("single", 1, 1000, 20, sustained=True), detector_backlog_mid=40,
        detector_backlog_end=900, detector_backlog_growth=850.0, readings_records_per_s=60.0,
        detector_drained_s=None,
    )  # fmt: skip
    capacity = Capacity("single", search=[behind], holds=[])
    text = "\n".join(capacity_section([CapacityRun(capacity, None)], 11.0))
    assert "40 -> 900 (+850), no **behind**" in text
    assert "| 100 -> 100 (-20) |" in text  # the stored lag and its trend
    assert "not measured" in "\n".join(capacity_section([single_run()], 11.0))
    unstored = replace(behind, drained_s=None)
    text = "\n".join(capacity_section([CapacityRun(Capacity("single", [unstored]), None)], 11.0))
    assert "40 -> 900 (+850), not waited for **behind**" in text


def test_the_json_holds_the_issues_keys_with_what_was_measured() -> None:
    unsustained = Capacity("upload30", search=[step("upload30", 30, 300, 20, sustained=False)])
    figures = capacity_json([single_run(), CapacityRun(unsustained, None)], 12.5)
    assert figures["single"] == {
        "sustained_msg_per_s": 1000,
        "pipeline_cpu_us_per_msg": 345.0,  # every process but the generator
        "efficiency": None,  # no ceilings measured
    }
    assert figures["upload30"] == {
        "sustained_readings_per_s": None,
        "pipeline_cpu_us_per_reading": None,
        "efficiency": None,
    }
    assert figures["p99_publish_to_alert_ms"] is None
    assert figures["calibration_pure_us_per_reading_at_10"] == 12.5


def test_the_section_says_which_targets_are_missed_and_by_how_much() -> None:
    text = "\n".join(capacity_section([single_run()], 12.5))
    assert (
        "1 reading per message, >= 5,000 msg/s sustained: **missed** (1,000.00 msg/s, 5.0x" in text
    )
    assert "pipeline CPU <= 190 us per message: **missed** (345.00 us, 1.8x" in text
    assert "| ThingsBoard, 2 vCPU" in text and "| 5,000 | 15,000 | 380 | 127 |" in text
    assert "12.5 us per reading" in text


def test_a_py_spy_profile_is_summarised_without_its_idle_waits() -> None:
    folded = (
        "main (a.py:1);run (b.py:2);select (selectors.py:468) 60\n"
        "main (a.py:1);handle (streams/_app.py:9);process_readings (streams/_patient.py:48) 30\n"
        "main (a.py:1);handle (streams/_app.py:9) 10\n"
    )
    prof = _summary("detector", folded)
    assert prof.samples == 100
    assert prof.idle_share == 0.6
    assert prof.top == [
        ("process_readings (streams/_patient.py:48)", 0.75),
        ("handle (streams/_app.py:9)", 0.25),
    ]


def test_the_plot_is_a_png_of_every_step(tmp_path: Path) -> None:
    image = tmp_path / "img" / "plot.png"
    plot_capacity([single_run().capacity], image)
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_cost_of_tls_has_its_own_line() -> None:
    mqtt = MqttCeiling(1000.0, 8000, 8000, 8000, 1000.0, 5.0, 30.0, 40.0)
    kafka = KafkaCeiling(40_000, 250, 9_000.0, 20_000.0, 60.0, 10.0)
    tls = TlsCost(packet_bytes=180, messages=20_000, plain_us=7.0, tls_us=20.5)
    run = CapacityRun(single_run().capacity, Ceilings(mqtt, kafka, 100_000.0, tls))
    text = "\n".join(capacity_section([run], 12.5))
    assert (
        "- **TLS, single** (180 B PUBLISH, one TLS record per packet each way): 13.5 µs per "
        "message per MQTT hop, both ends (plain TCP 7.0, TLS 20.5); two hops (device -> broker "
        "-> gateway): **27.0 µs per message**, 27.00 per reading, 8% of the pipeline's CPU per "
        "message." in text
    )


def test_an_mqtt_ceiling_that_delivered_all_it_was_offered_is_a_lower_bound() -> None:
    """Until 2026-12-05 the offers were delivered in full, and the report took the offer for
    the slowest stage: such a ceiling now says it is at least that."""
    kafka = KafkaCeiling(40_000, 250, 9_000.0, 20_000.0, 60.0, 10.0)
    for delivered, bound in ((19_972.0, True), (14_284.0, False)):
        mqtt = MqttCeiling(20_000.0, 160_000, 160_000, 160_000, delivered, 3.0, 19.0, 54.0)
        assert mqtt.offer_bound is bound
        run = CapacityRun(single_run().capacity, Ceilings(mqtt, kafka, 100_000.0))
        text = "\n".join(capacity_section([run], 12.5))
        marked = (
            "| MQTT (Mosquitto -> paho subscriber) | 19,972 (all of the 20,000 offered: at least) |"
        )
        assert (marked in text) is bound
        assert f"| MQTT (Mosquitto -> paho subscriber) | {delivered:,.0f}" in text
