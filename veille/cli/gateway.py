"""``veille gateway``: one MQTT -> Kafka gateway process."""

from __future__ import annotations

import argparse
from pathlib import Path

from veille.settings import Settings

from ._command import Subparsers, add_command, add_log_level, mark_component

__all__ = ["register"]

HELP = "run an MQTT -> Kafka gateway (settings from VEILLE_* variables)"


def _gateway(args: argparse.Namespace, settings: Settings) -> int:
    from veille._run import configure_logging, run_gateway_process

    configure_logging(settings, "gateway", args.log_level)
    return run_gateway_process(settings, Path(args.ready_file) if args.ready_file else None)


def register(sub: Subparsers) -> None:
    gateway = mark_component(add_command(sub, "gateway", _gateway, help=HELP, description=HELP))
    add_log_level(gateway)
    gateway.add_argument("--ready-file", help="file written once the subscription is in place")
