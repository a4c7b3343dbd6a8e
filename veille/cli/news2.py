"""``veille news2``: score one observation set (JSON on stdin) with NEWS2.

The checking and scoring is :mod:`veille.news2`; this is its command line.
"""

from __future__ import annotations

import argparse
import sys

from veille.settings import Settings

from ._command import Subparsers, add_command

__all__ = ["register"]


def _news2(args: argparse.Namespace, settings: Settings) -> int:
    from veille.news2 import run_news2

    code, output = run_news2(sys.stdin.read())
    print(output, file=sys.stdout if code == 0 else sys.stderr)
    return code


def register(sub: Subparsers) -> None:
    add_command(
        sub, "news2", _news2, help="score one observation set (JSON on stdin) with NEWS2",
        description="Read one observation set as JSON on stdin (respiration_rate, spo2, "
        "spo2_scale, air_or_oxygen, systolic_bp, pulse, consciousness, temperature) and print "
        "the NEWS2 sub-scores, total and clinical-risk band as JSON. See docs/NEWS2.md.",
    )  # fmt: skip
