"""How every command module registers itself: one sub-parser, one handler, one way.

A command module has ``register(sub)``, which calls :func:`add_command` (and, for a command
with actions such as ``veille devices add``, :func:`add_actions` and :func:`add_action`).
A handler takes the parsed arguments and the process's one :class:`~veille.settings.Settings`,
built by :func:`veille.cli.main`, and returns the exit code.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any, TypeAlias

from veille.settings import Settings

__all__ = [
    "AsyncHandler",
    "Handler",
    "Subparsers",
    "add_action",
    "add_actions",
    "add_command",
    "add_log_level",
    "add_state_dir",
    "mark_component",
    "parse_start",
    "run_async",
    "state_dir",
]

# argparse has no public name for the object add_subparsers() returns.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"  # noqa: SLF001
Handler: TypeAlias = Callable[[argparse.Namespace, Settings], int]
AsyncHandler: TypeAlias = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


def add_command(
    sub: Subparsers,
    name: str,
    handler: Handler | None = None,
    *,
    help: str,  # noqa: A002 - argparse's own keyword
    description: str | None = None,
) -> argparse.ArgumentParser:
    """``veille NAME``; without a handler, its actions (:func:`add_actions`) carry theirs."""
    parser = sub.add_parser(name, help=help, description=description)
    if handler is not None:
        parser.set_defaults(func=handler)
    return parser


def add_actions(command: argparse.ArgumentParser) -> Subparsers:
    """The ``ACTION`` of a command that has several (``veille devices add|bind|...``)."""
    return command.add_subparsers(dest="action", required=True, metavar="ACTION")


def add_action(
    actions: Subparsers,
    name: str,
    handler: Handler,
    *,
    help: str,  # noqa: A002 - argparse's own keyword
    description: str | None = None,
) -> argparse.ArgumentParser:
    """``veille COMMAND NAME``, handled by ``handler``."""
    return add_command(actions, name, handler, help=help, description=description)


def mark_component(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """A long-running component: with ``VEILLE_ENV=production`` it refuses to start while a
    ``veille doctor`` check fails (checked once, in :func:`veille.cli.main`)."""
    parser.set_defaults(component=True)
    return parser


def run_async(handler: AsyncHandler) -> Handler:
    """A handler that runs the coroutine ``handler`` on its own event loop."""

    def run(args: argparse.Namespace, settings: Settings) -> int:
        return asyncio.run(handler(args, settings))

    return run


def add_log_level(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")


def add_state_dir(parser: argparse.ArgumentParser) -> None:
    """The local stack's directory and partition count (``veille stack``, ``veille demo``)."""
    parser.add_argument(
        "--state-dir", help="local stack directory (default .veille or $VEILLE_STATE_DIR)"
    )
    parser.add_argument(
        "--partitions", type=int, default=12, help="partitions per topic (default 12)"
    )


def state_dir(args: argparse.Namespace, settings: Settings) -> Path:
    """``--state-dir`` if given, else ``VEILLE_STATE_DIR`` (default ``.veille``)."""
    return Path(args.state_dir) if args.state_dir else settings.state_dir


def parse_start(text: str | None) -> datetime | None:
    """``--start`` of ``replay`` and ``simulate``: an ISO time (``Z`` accepted), or None."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
