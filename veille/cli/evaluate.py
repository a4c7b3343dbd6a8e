"""``veille evaluate``: alert quality on a simulated fleet against its ground truth.

The measurement itself is :mod:`veille.evaluate`; this is its command line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from veille.settings import Settings

from ._command import Subparsers, add_command

__all__ = ["register"]


def _evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from veille.evaluate import EvaluateOptions, run_evaluate

    options = EvaluateOptions(
        seed=args.seed, patients=args.patients, hours=args.hours,
        out=Path(args.out) if args.out else None,
    )  # fmt: skip
    code, text = run_evaluate(options)
    print(text)
    return code


def register(sub: Subparsers) -> None:
    evaluate = add_command(
        sub, "evaluate", _evaluate,
        help="measure alert quality on a simulated fleet against its ground truth",
        description="Run the simulator through validation and detection (in process, the same "
        "functions as the workers), compare alerts with the injected events and print JSON: "
        "sensitivity and time-to-alert per event kind, false alerts per patient-day, and the "
        "same for a naive baseline. See docs/ALERT_QUALITY.md.",
    )  # fmt: skip
    evaluate.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    evaluate.add_argument("--patients", type=int, default=200, help="patients (default 200)")
    evaluate.add_argument("--hours", type=int, default=24, help="simulated hours (default 24)")
    evaluate.add_argument("--out", help="also write the JSON report to this file")
