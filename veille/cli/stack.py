"""``veille stack up | down | status | env``: the embedded local stack."""

from __future__ import annotations

import argparse
from dataclasses import replace

from veille.settings import Settings

from ._command import Subparsers, add_command, add_state_dir, state_dir

__all__ = ["register"]


TOPOLOGY_COUNTS = ("gateways", "validators", "detectors", "sinks")


def _stack(args: argparse.Namespace, settings: Settings) -> int:
    from veille.stack import LocalStack, LocalTopology

    stack = LocalStack(
        state_dir(args, settings),
        partitions=args.partitions,
        topics=settings.topics,
        monitoring=args.monitoring,
        fast_rules=args.monitoring_fast_rules,
    )
    components = LocalTopology(stack.state_dir)
    if args.action == "up":
        for line in stack.up():
            print(line)
        given = {k: getattr(args, k) for k in TOPOLOGY_COUNTS if getattr(args, k) is not None}
        wanted = replace(components.current(), **given)
        monitoring = stack.prometheus_url() is not None
        for line in components.up(wanted, stack.env(), monitoring=monitoring):
            print(line)
        print(f"settings written to {stack.env_file} (source it, or run `veille stack env`)")
    elif args.action == "down":
        for line in [*components.down(purge=args.purge), *stack.down(purge=args.purge)]:
            print(line)
    elif args.action == "status":
        statuses = stack.status() + components.status()
        for status in statuses:
            print(status.line())
        return 0 if all(s.state == "running" for s in statuses) else 1
    else:
        for key, value in stack.env().items():
            print(f"{key}={value}")
    return 0


def register(sub: Subparsers) -> None:
    stack = add_command(
        sub, "stack", _stack, help="start, stop or inspect the embedded local stack"
    )
    stack.add_argument("action", choices=["up", "down", "status", "env"], help="what to do")
    stack.add_argument("--purge", action="store_true", help="with down: delete the database files")
    stack.add_argument(
        "--monitoring",
        action="store_true",
        help="with up: also run Prometheus (Debian's), scraping the stack's components and "
        "evaluating deploy/prometheus/rules.yml; stopped by down",
    )
    stack.add_argument(
        "--monitoring-fast-rules",
        action="store_true",
        help="with up: --monitoring with every rule's `for:` divided by 60 (1m becomes 1s), "
        "so tests and demos see alerts fire in seconds",
    )
    helps = {
        "gateways": "with up: N gateways (ids gw-1..gw-N, shared MQTT subscription when N > 1)",
        "validators": "with up: N validating workers",
        "detectors": "with up: N detecting workers",
        "sinks": "with up: N database sinks. Each component runs detached, with its log in "
        "STATE_DIR/logs and a metrics port of its own (`status` lists them, `down` stops "
        "them); a count not given keeps what an earlier up started",
    }
    for count in TOPOLOGY_COUNTS:
        stack.add_argument(f"--{count}", type=_count, metavar="N", help=helps[count])
    add_state_dir(stack)


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value}: a count is 0 or more")
    return value
