"""``veille simulate``: a realistic simulated fleet, to files with ground truth or live.

The simulation runs in :mod:`veille.simulate`; this is its command line, which also
provisions and binds the devices before publishing live.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from veille.settings import Settings

from ._command import Subparsers, add_command, parse_start

__all__ = ["register"]


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    import psycopg

    from store import upsert_bindings
    from veille.publisher import simulator_endpoint
    from veille.simulate import SimulateOptions, run_simulate, simulation_bindings

    live = args.out is None
    options = SimulateOptions(
        patients=args.patients, minutes=args.minutes, seed=args.seed, speed=args.speed,
        out=Path(args.out) if args.out else None, truth=Path(args.truth) if args.truth else None,
        start=parse_start(args.start), tenant=args.tenant,
        broker=simulator_endpoint(settings) if live else None,
        **({"pseudonym_key": settings.pseudonym_key.get_secret_value().encode()}
           if live else {}),
    )  # fmt: skip
    if live:

        async def provision() -> int:
            async with await psycopg.AsyncConnection.connect(
                settings.database_url_for("registry").get_secret_value(), autocommit=True
            ) as conn:
                return await upsert_bindings(conn, simulation_bindings(options))

        print(f"provisioned and bound {asyncio.run(provision())} simulated devices")
    return run_simulate(options)


def register(sub: Subparsers) -> None:
    simulate = add_command(
        sub, "simulate", _simulate,
        help="a realistic simulated fleet: files with ground truth, or live over MQTT",
        description="Simulate patients and their devices (circadian rhythm, activity, artefacts, "
        "lost signal, silences, clock skew, duplicates, reordering, clinical events). With --out, "
        "write JSON lines and a ground-truth file (same seed: identical bytes); without, "
        "provision the devices and publish over MQTT to the stack in the environment.",
    )  # fmt: skip
    simulate.add_argument("--patients", type=int, default=20, help="patients (default 20)")
    simulate.add_argument("--minutes", type=float, default=60.0, help="simulated minutes")
    simulate.add_argument("--seed", type=int, default=1, help="seed (default 1)")
    simulate.add_argument(
        "--speed", type=float, default=1.0,
        help="live: 1 = real time (default), 60 = a minute per second, 0 = as fast as possible",
    )  # fmt: skip
    simulate.add_argument("--out", help="write messages as JSON lines here instead of publishing")
    simulate.add_argument("--truth", help="ground-truth file (default: OUT.truth.json)")
    simulate.add_argument("--start", help="RFC 3339 simulation start (files: 2026-01-05T00:00:00Z)")
    simulate.add_argument("--tenant", default="chu-sim", help="establishment (default chu-sim)")
