"""``veille doctor``: check a deployment's configuration, one line per check with its fix."""

from __future__ import annotations

import argparse

from veille.settings import Settings

from ._command import Subparsers, add_command

__all__ = ["register"]

HELP = "check this deployment's security settings (TLS, credentials, keys); exit 1 on a failure"


def _doctor(args: argparse.Namespace, settings: Settings) -> int:
    from veille.security import Status, run_checks

    findings = run_checks(settings)
    for finding in findings:
        print(finding.line())
    failed = [f.check for f in findings if f.status is Status.FAIL]
    if failed and settings.env == "development":
        print(f"{len(failed)} check(s) failed; fine for a local stack, not for production "
              "(with VEILLE_ENV=production the components refuse to start)")  # fmt: skip
    elif failed:
        print(f"{len(failed)} check(s) failed: the components will not start until fixed")
    return 1 if failed else 0


def register(sub: Subparsers) -> None:
    add_command(
        sub, "doctor", _doctor, help=HELP,
        description="Check the settings this process reads (VEILLE_* and stack.env): MQTT over "
        "TLS with a CA file, no anonymous MQTT client, the pseudonym key and passwords not the "
        "development ones, key and password files readable by their owner only, the clinic "
        "cookie HTTPS-only. Prints ok / warning / fail with the fix; exits 1 when a check "
        "fails. With VEILLE_ENV=production every component runs these checks before starting.",
    )  # fmt: skip
