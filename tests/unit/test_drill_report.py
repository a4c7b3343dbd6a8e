"""The drill's verdict (``veille.drill.DrillReport``): each check fails on its own evidence,
and the figures name the recovery point in readings."""

from __future__ import annotations

import json
from pathlib import Path

from veille.drill import DrillReport


def _passing() -> DrillReport:
    report = DrillReport(patients=8, preloaded_readings=0)
    report.readings_at_mark, report.readings_at_loss = 1000, 1200
    report.readings_restored, report.readings_final = 1150, 3000
    report.missing_after_restore, report.duplicate_open_alerts = 0, 0
    return report


def test_a_clean_drill_has_no_failure_and_counts_what_was_lost_after_the_last_archive(
    tmp_path: Path,
) -> None:
    report = _passing()
    assert report.failures() == []
    assert report.lost_after_last_archive == 50
    report.write_json(tmp_path / "r.json")
    written = json.loads((tmp_path / "r.json").read_text())
    assert written["lost_after_last_archive"] == 50 and written["failures"] == []
    assert any("50 lost after the last archived WAL" in line for line in report.lines())


def test_each_check_fails_on_its_own() -> None:
    missing = _passing()
    missing.missing_after_restore = 3
    duplicated = _passing()
    duplicated.duplicate_open_alerts = 1
    orphan = _passing()
    orphan.open_only_in_database = ["a-1"]
    unseen = _passing()
    unseen.open_only_in_detectors = ["a-2"]
    never_compared = DrillReport(patients=8, preloaded_readings=0)  # the checks never ran
    assert "3 readings stored before the last archived WAL" in missing.failures()[0]
    assert "two open alerts" in duplicated.failures()[0]
    assert "orphans" in orphan.failures()[0] and "a-1" in orphan.failures()[0]
    assert "a-2" in unseen.failures()[0]
    assert len(never_compared.failures()) == 2
