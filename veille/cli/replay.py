"""``veille replay``: publish a recorded CSV as one device over MQTT."""

from __future__ import annotations

import argparse
from pathlib import Path

from veille.settings import Settings

from ._command import Subparsers, add_command, parse_start

__all__ = ["register"]


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from veille.publisher import simulator_endpoint
    from veille.replay import ReplayOptions, run_replay

    start = parse_start(args.start)
    summary = run_replay(
        ReplayOptions(
            path=Path(args.path), device_id=args.device, tenant=args.tenant,
            broker=simulator_endpoint(settings), speed=args.speed, start=start,
        )
    )  # fmt: skip
    print(
        f"replayed {summary.messages} rows, {summary.readings} readings "
        f"({summary.no_signal} no-signal) as {args.device}, measured "
        f"{summary.first_measured_at.isoformat()} to {summary.last_measured_at.isoformat()}"
    )
    return 0


def register(sub: Subparsers) -> None:
    replay = add_command(
        sub, "replay", _replay, help="publish a recorded CSV as one device over MQTT",
        description="Publish a recorded CSV (a minute, second or time column and one column per "
        "metric) as one device. Empty cells are not sent; zeros are sent as no-signal readings.",
    )  # fmt: skip
    replay.add_argument("path", help="CSV file, e.g. tests/data/mimic_s00001_numerics.csv")
    replay.add_argument("--device", required=True, help="device id (provisioned and bound)")
    replay.add_argument("--tenant", required=True, help="the device's establishment")
    replay.add_argument(
        "--speed", type=float, default=0.0,
        help="1 = real time, 60 = a minute per second, 0 = as fast as possible (default)",
    )  # fmt: skip
    replay.add_argument("--start", help="RFC 3339 time of the first row (default: ends now)")
