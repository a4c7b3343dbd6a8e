"""``veille``: the command line, the front door. Every command has ``--help``.

One module per command (``veille.cli.devices`` is ``veille devices``), each with
``register(sub)``. :func:`main` reads the settings once for the process and hands them to the
command's handler, which passes them, or the part a component needs, down.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from veille.errors import VeilleError
from veille.settings import Settings

from . import (
    alerts,
    audit,
    backup,
    certs,
    clinic,
    demo,
    devices,
    doctor,
    drill,
    evaluate,
    fhir,
    gateway,
    grants,
    migrate,
    news2,
    patients,
    replay,
    simulate,
    sink,
    stack,
    thresholds,
    users,
    webhooks,
    worker,
)

__all__ = ["build_parser", "main"]

# In the order `veille --help` lists them (backup registers `backup` and `restore`).
COMMANDS = (
    stack, gateway, worker, sink, migrate, devices, alerts, thresholds, fhir, webhooks,
    patients, grants, users, clinic, audit, backup, drill, certs, doctor, replay, evaluate, news2,
    simulate, demo,
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="veille",
        description="Remote patient monitoring: devices -> MQTT -> Kafka -> streams -> database.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def _production_refusal(settings: Settings) -> str | None:
    """Why a component may not start in production (``veille doctor``'s failures), or None."""
    from veille.security import Status, run_checks

    findings = run_checks(settings)
    failed = [f for f in findings if f.status is Status.FAIL]
    if not failed:
        return None
    names = ", ".join(f.check for f in failed)
    lines = [f"veille: VEILLE_ENV=production and {len(failed)} check(s) fail ({names}); "
             "not starting. Fix them (`veille doctor` prints the same):"]  # fmt: skip
    return "\n".join(lines + [f"  {finding.line()}" for finding in failed])


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()  # the one read of VEILLE_* (and stack.env) in this process
    except ValidationError as exc:
        print(f"veille: invalid settings: {exc}", file=sys.stderr)
        return 2
    if getattr(args, "component", False) and settings.env == "production":
        refusal = _production_refusal(settings)
        if refusal is not None:
            print(refusal, file=sys.stderr)
            return 2
    try:
        return int(args.func(args, settings))
    except VeilleError as exc:
        print(f"veille: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `veille devices list | head`: the reader left; not an error worth a traceback.
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
