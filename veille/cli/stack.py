"""``veille stack up | down | status | env``: the embedded local stack."""

from __future__ import annotations

import argparse

from veille.settings import Settings

from ._command import Subparsers, add_command, add_state_dir, state_dir

__all__ = ["register"]


def _stack(args: argparse.Namespace, settings: Settings) -> int:
    from veille.stack import LocalStack

    stack = LocalStack(
        state_dir(args, settings),
        partitions=args.partitions,
        topics=settings.topics,
        monitoring=args.monitoring,
        fast_rules=args.monitoring_fast_rules,
    )
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
    add_state_dir(stack)
