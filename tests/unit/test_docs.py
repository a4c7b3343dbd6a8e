"""docs/PAYLOADS.md documents every metric, device type and dead-letter reason (stays true)."""

from __future__ import annotations

from pathlib import Path

from devices import CATALOGUE, DEVICE_TYPES, DeadLetterReason

PAYLOADS = (Path(__file__).resolve().parents[2] / "docs" / "PAYLOADS.md").read_text()


def test_every_metric_is_documented_with_its_loinc_and_unit() -> None:
    for metric in CATALOGUE.values():
        row = next(
            (line for line in PAYLOADS.splitlines() if line.startswith(f"| `{metric.name}` |")), ""
        )
        assert metric.loinc in row and f"`{metric.unit}`" in row, metric.name


def test_every_device_type_and_dead_letter_reason_is_documented() -> None:
    assert all(f"`{name}`" in PAYLOADS for name in DEVICE_TYPES)
    assert all(f"`{reason.value}`" in PAYLOADS for reason in DeadLetterReason)
