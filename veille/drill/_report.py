"""What a drill measured and found: timings per step, counts, and the three checks."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["DrillReport", "Timings"]


@dataclass(slots=True)
class Timings:
    """Seconds per step. ``restore_to_new_readings_s`` is the figure the drill exists for:
    from the start of the restore to the first new reading stored."""

    preload_s: float | None = None
    backup_s: float = 0.0
    restore_files_s: float = 0.0  # pgbackrest restore: the data directory back
    recovery_and_services_s: float = 0.0  # WAL replay, promotion, Kafka topics, migrations
    pipeline_ready_s: float = 0.0  # gateway subscribed, workers and sink started
    reconcile_alerts_s: float = 0.0  # orphan alerts resolved and recorded
    restore_to_new_readings_s: float = 0.0


@dataclass(slots=True)
class DrillReport:
    patients: int
    preloaded_readings: int
    database_bytes: int = 0
    repository_bytes: int = 0
    readings_at_mark: int = 0  # keys saved before the last forced WAL switch (preload too)
    # The live ward's readings (not the preloaded ones): when the database was killed, in
    # the restored database before the pipeline ran, and at the end.
    readings_at_loss: int = 0
    readings_restored: int = 0
    readings_final: int = 0
    readings_acked_by_broker: int = 0  # the fleet's readings Mosquitto acknowledged
    missing_after_restore: int = -1  # of readings_at_mark; must be 0
    orphans_resolved: int = 0  # alerts the restored database held open, resolved
    duplicate_open_alerts: int = -1  # (patient, rule) with two open alerts; must be 0
    open_only_in_database: list[str] = field(default_factory=list)  # must be empty
    open_only_in_detectors: list[str] = field(default_factory=list)  # must be empty
    open_alerts_final: int = 0
    timings: Timings = field(default_factory=Timings)

    @property
    def lost_after_last_archive(self) -> int:
        """Readings stored after the last archived WAL segment and lost with the server:
        the recovery point objective in readings (bounded by ``archive_timeout``)."""
        return max(0, self.readings_at_loss - self.readings_restored)

    def failures(self) -> list[str]:
        found = []
        if self.missing_after_restore != 0:
            found.append(
                f"{self.missing_after_restore} readings stored before the last archived WAL "
                "are missing after the restore"
            )
        if self.duplicate_open_alerts != 0:
            found.append(f"{self.duplicate_open_alerts} (patient, rule) pairs have two open alerts")
        if self.open_only_in_database:
            found.append(
                f"{len(self.open_only_in_database)} alerts open in the database are unknown "
                f"to the detectors (orphans): {', '.join(self.open_only_in_database[:5])}"
            )
        if self.open_only_in_detectors:
            found.append(
                f"{len(self.open_only_in_detectors)} alerts open in the detectors' state are "
                f"not open in the database: {', '.join(self.open_only_in_detectors[:5])}"
            )
        return found

    def lines(self) -> list[str]:
        t = self.timings
        mib = 2**20
        out = [
            f"data set: {self.patients} simulated patients live"
            + (f", {self.preloaded_readings:,} readings preloaded" if self.preloaded_readings
               else "")
            + f"; database {self.database_bytes / mib:,.1f} MiB, backup "
            f"{self.repository_bytes / mib:,.1f} MiB (compressed, encrypted)",
        ]  # fmt: skip
        if t.preload_s is not None:
            out.append(f"preload: {t.preload_s:.1f} s")
        out += [
            f"backup (full): {t.backup_s:.1f} s",
            f"restore starts -> new readings stored again: {t.restore_to_new_readings_s:.1f} s"
            f" (files {t.restore_files_s:.1f} s, WAL replay and services "
            f"{t.recovery_and_services_s:.1f} s, pipeline {t.pipeline_ready_s:.1f} s, "
            f"alerts reconciled {t.reconcile_alerts_s:.1f} s)",
            f"readings: {self.readings_at_mark:,} stored before the last archived WAL, "
            f"{self.missing_after_restore:,} of them missing after the restore; the ward's: "
            f"{self.readings_at_loss:,} stored when the server was lost, "
            f"{self.readings_restored:,} restored ({self.lost_after_last_archive:,} lost after "
            f"the last archived WAL); {self.readings_final:,} at the end, of "
            f"{self.readings_acked_by_broker:,} the broker acknowledged to the devices",
            f"alerts: {self.orphans_resolved} open in the restored database resolved as "
            f"orphans; at the end {self.open_alerts_final} open, "
            f"{self.duplicate_open_alerts} duplicated, {len(self.open_only_in_database)} "
            f"open only in the database, {len(self.open_only_in_detectors)} only in the "
            "detectors' state",
        ]
        return out

    def write_json(self, path: Path) -> None:
        data = asdict(self)
        data["lost_after_last_archive"] = self.lost_after_last_archive
        data["failures"] = self.failures()
        path.write_text(json.dumps(data, indent=2) + "\n")
