"""``veille``: the command line. Every command has ``--help``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from veille._alerts_cli import add_alerts_parser
from veille._backup_cli import add_backup_parsers
from veille._clinic_cli import add_clinic_parser
from veille._devices_cli import add_devices_parser
from veille._fhir_cli import add_fhir_parser
from veille._thresholds_cli import add_thresholds_parser
from veille._users_cli import add_users_parser
from veille._webhooks_cli import add_webhooks_parser
from veille.errors import VeilleError

__all__ = ["main"]


def _stack_dir(args: argparse.Namespace) -> Path:
    from veille.settings import Settings

    return Path(args.state_dir) if args.state_dir else Settings().state_dir


def _cmd_stack(args: argparse.Namespace) -> int:
    from veille.stack import LocalStack

    stack = LocalStack(_stack_dir(args), partitions=args.partitions)
    if args.action == "up":
        for line in stack.up():
            print(line)
        print(f"settings written to {stack.env_file} (source it, or run `veille stack env`)")
    elif args.action == "down":
        for line in stack.down(purge=args.purge):
            print(line)
    elif args.action == "status":
        statuses = stack.status()
        for status in statuses:
            print(status.line())
        return 0 if all(s.state == "running" for s in statuses) else 1
    else:
        for key, value in stack.env().items():
            print(f"{key}={value}")
    return 0


def _cmd_gateway(args: argparse.Namespace) -> int:
    from veille._run import configure_logging, run_gateway_process
    from veille.settings import Settings

    configure_logging(args.log_level)
    return run_gateway_process(Settings(), Path(args.ready_file) if args.ready_file else None)


def _cmd_worker(args: argparse.Namespace) -> int:
    from veille._run import run_worker_process
    from veille.settings import Settings

    settings = Settings() if args.role is None else Settings(worker_role=args.role)
    return run_worker_process(settings)


def _cmd_sink(args: argparse.Namespace) -> int:
    from veille._run import configure_logging, run_sink_process
    from veille.settings import Settings

    configure_logging(args.log_level)
    return run_sink_process(Settings())


def _cmd_migrate(args: argparse.Namespace) -> int:
    import asyncio

    from store import migrate
    from veille.settings import Settings

    info = asyncio.run(migrate(Settings().database_url.get_secret_value()))
    print(f"schema v{info.version} ({info.flavour.value}) ready")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from veille.demo import DemoOptions, run_demo

    return run_demo(
        DemoOptions(
            state_dir=_stack_dir(args),
            duration_s=args.duration,
            patients=args.patients,
            seed=args.seed,
            keep_stack=args.keep_stack,
            partitions=args.partitions,
        )
    )


def _cmd_replay(args: argparse.Namespace) -> int:
    from veille.replay import ReplayOptions, run_replay
    from veille.settings import Settings

    start = _parse_start(args.start)
    summary = run_replay(
        ReplayOptions(
            path=Path(args.path), device_id=args.device, tenant=args.tenant,
            mqtt_url=Settings().mqtt_url, speed=args.speed, start=start,
        )
    )  # fmt: skip
    print(
        f"replayed {summary.messages} rows, {summary.readings} readings "
        f"({summary.no_signal} no-signal) as {args.device}, measured "
        f"{summary.first_measured_at.isoformat()} to {summary.last_measured_at.isoformat()}"
    )
    return 0


def _parse_start(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _cmd_simulate(args: argparse.Namespace) -> int:
    import asyncio

    import psycopg

    from store import upsert_bindings
    from veille.settings import Settings
    from veille.simulate import SimulateOptions, run_simulate, simulation_bindings

    live = args.out is None
    settings = Settings() if live else None
    options = SimulateOptions(
        patients=args.patients, minutes=args.minutes, seed=args.seed, speed=args.speed,
        out=Path(args.out) if args.out else None, truth=Path(args.truth) if args.truth else None,
        start=_parse_start(args.start), tenant=args.tenant,
        mqtt_url=settings.mqtt_url if settings else None,
        **({"pseudonym_key": settings.pseudonym_key.get_secret_value().encode()}
           if settings else {}),
    )  # fmt: skip
    if settings is not None:

        async def provision() -> int:
            async with await psycopg.AsyncConnection.connect(
                settings.database_url.get_secret_value(), autocommit=True
            ) as conn:
                return await upsert_bindings(conn, simulation_bindings(options))

        print(f"provisioned and bound {asyncio.run(provision())} simulated devices")
    return run_simulate(options)


def _cmd_news2(args: argparse.Namespace) -> int:
    from veille.news2 import run_news2

    code, output = run_news2(sys.stdin.read())
    print(output, file=sys.stdout if code == 0 else sys.stderr)
    return code


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from veille.evaluate import EvaluateOptions, run_evaluate

    options = EvaluateOptions(
        seed=args.seed, patients=args.patients, hours=args.hours,
        out=Path(args.out) if args.out else None,
    )  # fmt: skip
    code, text = run_evaluate(options)
    print(text)
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="veille",
        description="Remote patient monitoring: devices -> MQTT -> Kafka -> streams -> database.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add_state_dir(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--state-dir", help="local stack directory (default .veille or $VEILLE_STATE_DIR)"
        )
        p.add_argument(
            "--partitions", type=int, default=12, help="partitions per topic (default 12)"
        )

    stack = sub.add_parser("stack", help="start, stop or inspect the embedded local stack")
    stack.add_argument("action", choices=["up", "down", "status", "env"], help="what to do")
    stack.add_argument("--purge", action="store_true", help="with down: delete the database files")
    add_state_dir(stack)
    stack.set_defaults(func=_cmd_stack)

    for name, func, text in (
        (
            "gateway",
            _cmd_gateway,
            "run an MQTT -> Kafka gateway (settings from VEILLE_* variables)",
        ),
        ("worker", _cmd_worker, "run a stream worker: validation and/or detection (Faust)"),
        ("sink", _cmd_sink, "run a database sink: readings, alerts, dead letters -> database"),
        ("migrate", _cmd_migrate, "create or upgrade the database schema"),
    ):
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
        if name == "gateway":
            p.add_argument("--ready-file", help="file written once the subscription is in place")
        if name == "worker":
            p.add_argument(
                "--role", choices=("validate", "detect", "all"),
                help="validate, detect or all (default: VEILLE_WORKER_ROLE, else all)",
            )  # fmt: skip
        p.set_defaults(func=func)

    add_devices_parser(sub)
    add_alerts_parser(sub)
    add_thresholds_parser(sub)
    add_fhir_parser(sub)
    add_webhooks_parser(sub)
    add_users_parser(sub)
    add_clinic_parser(sub)
    add_backup_parsers(sub)

    replay = sub.add_parser(
        "replay", help="publish a recorded CSV as one device over MQTT",
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
    replay.set_defaults(func=_cmd_replay)

    evaluate = sub.add_parser(
        "evaluate", help="measure alert quality on a simulated fleet against its ground truth",
        description="Run the simulator through validation and detection (in process, the same "
        "functions as the workers), compare alerts with the injected events and print JSON: "
        "sensitivity and time-to-alert per event kind, false alerts per patient-day, and the "
        "same for a naive baseline. See docs/ALERT_QUALITY.md.",
    )  # fmt: skip
    evaluate.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    evaluate.add_argument("--patients", type=int, default=200, help="patients (default 200)")
    evaluate.add_argument("--hours", type=int, default=24, help="simulated hours (default 24)")
    evaluate.add_argument("--out", help="also write the JSON report to this file")
    evaluate.set_defaults(func=_cmd_evaluate)

    news2 = sub.add_parser(
        "news2", help="score one observation set (JSON on stdin) with NEWS2",
        description="Read one observation set as JSON on stdin (respiration_rate, spo2, "
        "spo2_scale, air_or_oxygen, systolic_bp, pulse, consciousness, temperature) and print "
        "the NEWS2 sub-scores, total and clinical-risk band as JSON. See docs/NEWS2.md.",
    )  # fmt: skip
    news2.set_defaults(func=_cmd_news2)

    simulate = sub.add_parser(
        "simulate", help="a realistic simulated fleet: files with ground truth, or live over MQTT",
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
    simulate.set_defaults(func=_cmd_simulate)

    demo = sub.add_parser(
        "demo", help="run the whole pipeline on the local stack with a simulated fleet",
        description="Start the local stack, gateway, worker and sink, publish a simulated fleet "
        "over MQTT, show a live panel, then print totals and how to query the data.",
    )  # fmt: skip
    demo.add_argument(
        "--duration", type=float, default=60.0, help="seconds to publish (default 60)"
    )
    demo.add_argument("--patients", type=int, default=50, help="simulated patients, 4 devices each")
    demo.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    demo.add_argument(
        "--keep-stack", action="store_true", help="leave the services running at the end"
    )
    add_state_dir(demo)
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except VeilleError as exc:
        print(f"veille: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `veille devices list | head`: the reader left; not an error worth a traceback.
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
