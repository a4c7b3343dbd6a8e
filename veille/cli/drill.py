"""``veille drill``: back up a live pipeline, lose its database and Kafka, restore, check.

The drill runs on a stack of its own (``--work-dir``, default a new directory under the
state directory), never on the stack ``veille stack up`` runs: it destroys its database.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from veille.settings import Settings

from ._command import Subparsers, add_command

__all__ = ["register"]


def _drill(args: argparse.Namespace, settings: Settings) -> int:
    from veille.drill import DrillOptions, run_drill

    work_dir = args.work_dir or (settings.state_dir / f"drill-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
    print(f"veille drill: recovery from total loss, in {work_dir}", flush=True)
    report = run_drill(
        DrillOptions(
            settings=settings,
            work_dir=work_dir,
            patients=args.patients,
            seed=args.seed,
            before_backup_s=args.before_backup,
            after_backup_s=args.after_backup,
            after_restore_s=args.after_restore,
            preload_readings=args.preload_readings,
            keep=args.keep,
            partitions=args.partitions,
        ),
        lambda line: print(line, flush=True),
    )
    print("drill figures:")
    for line in report.lines():
        print(f"  {line}")
    if args.report:
        report.write_json(args.report)
        print(f"  written to {args.report}")
    failures = report.failures()
    for failure in failures:
        print(f"drill FAILED: {failure}")
    if not failures:
        print("drill passed: every archived reading back, open alerts agree with the detectors")
    return 1 if failures else 0


def register(sub: Subparsers) -> None:
    drill = add_command(
        sub,
        "drill",
        _drill,
        help="rehearse recovery from total loss (backup, lose database and Kafka, restore)",
        description="On a stack of its own, with a simulated ward publishing: take a full "
        "pgBackRest backup, save the key of every stored reading and archive the WAL, kill "
        "PostgreSQL and Kafka and delete the data directory, restore to the latest archived "
        "WAL and restart the pipeline. Times each step, checks that no archived reading is "
        "missing and that open alerts in the database and the detectors' state agree; exit "
        "status 1 when a check fails. See docs/OPERATIONS.md.",
    )
    drill.add_argument("--patients", type=int, default=12, help="simulated patients (default 12)")
    drill.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    drill.add_argument(
        "--partitions", type=int, default=12, help="partitions per Kafka topic (default 12)"
    )
    drill.add_argument(
        "--before-backup",
        type=float,
        default=20.0,
        metavar="S",
        help="seconds of publishing before the backup (default 20)",
    )
    drill.add_argument(
        "--after-backup",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds of publishing between backup and loss (default 10)",
    )
    drill.add_argument(
        "--after-restore",
        type=float,
        default=20.0,
        metavar="S",
        help="seconds of publishing after the restore (default 20)",
    )
    drill.add_argument(
        "--preload-readings",
        type=int,
        default=0,
        metavar="N",
        help="readings generated in the database before the backup (e.g. "
        "10000000 for the sizing figure in docs/OPERATIONS.md)",
    )
    drill.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="a new directory for the drill's stack (default: under the state "
        "directory); refused if it exists",
    )
    drill.add_argument(
        "--keep",
        action="store_true",
        help="leave the drill's stack running and its directory in place",
    )
    drill.add_argument(
        "--report",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the figures and checks as JSON",
    )
