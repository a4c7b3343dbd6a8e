"""``veille demo``: the whole pipeline on the local stack with a simulated fleet.

The demo itself is :mod:`veille.demo` (:class:`~veille.demo.DemoOptions`,
:func:`~veille.demo.run_demo`); this is its command line.
"""

from __future__ import annotations

import argparse

from veille.settings import Settings

from ._command import Subparsers, add_command, add_state_dir, state_dir

__all__ = ["register"]


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from veille.demo import DemoOptions, run_demo

    return run_demo(
        DemoOptions(
            settings=settings,
            state_dir=state_dir(args, settings),
            duration_s=args.duration,
            patients=args.patients,
            seed=args.seed,
            keep_stack=args.keep_stack,
            partitions=args.partitions,
        )
    )


def register(sub: Subparsers) -> None:
    demo = add_command(
        sub, "demo", _demo,
        help="run the whole pipeline on the local stack with a simulated fleet",
        description="Start the local stack, gateway, worker and sink, publish a simulated fleet "
        "over MQTT, show a live panel, then print totals and how to query the data.",
    )  # fmt: skip
    demo.add_argument(
        "--duration", type=float, default=60.0, help="seconds to publish (default 60)"
    )
    demo.add_argument(
        "--patients",
        type=int,
        default=50,
        help="simulated patients, 5 to 7 devices each (one is the nurse's observation app)",
    )
    demo.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    demo.add_argument(
        "--keep-stack", action="store_true", help="leave the services running at the end"
    )
    add_state_dir(demo)
