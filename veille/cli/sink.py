"""``veille sink``: a database sink process (readings, alerts, dead letters)."""

from __future__ import annotations

import argparse

from veille.settings import Settings

from ._command import Subparsers, add_command, add_log_level, mark_component

__all__ = ["register"]

HELP = "run a database sink: readings, alerts, dead letters -> database"


def _sink(args: argparse.Namespace, settings: Settings) -> int:
    from veille._run import configure_logging, run_sink_process

    configure_logging(settings, "sink", args.log_level)
    return run_sink_process(settings)


def register(sub: Subparsers) -> None:
    add_log_level(mark_component(add_command(sub, "sink", _sink, help=HELP, description=HELP)))
