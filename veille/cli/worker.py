"""``veille worker``: a stream worker process (validation, detection, or one of each)."""

from __future__ import annotations

import argparse

from veille.settings import Settings

from ._command import Subparsers, add_command, add_log_level, mark_component

__all__ = ["register"]

HELP = "run a stream worker: validation and/or detection (Faust)"


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from veille._run import run_worker_process

    if args.role is not None:
        settings = settings.model_copy(update={"worker_role": args.role})
    return run_worker_process(settings, args.log_level)


def register(sub: Subparsers) -> None:
    worker = mark_component(add_command(sub, "worker", _worker, help=HELP, description=HELP))
    add_log_level(worker)
    worker.add_argument(
        "--role", choices=("validate", "detect", "all"),
        help="validate, detect or all (default: VEILLE_WORKER_ROLE, else all)",
    )  # fmt: skip
