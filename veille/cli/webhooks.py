"""``veille webhooks``: subscribe a URL to alert events, inspect deliveries, run the dispatcher."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Callable, Sequence

import psycopg
from rich.console import Console
from rich.table import Table

from clinic import (
    add_subscription,
    disable_subscription,
    list_deliveries,
    list_subscriptions,
    run_dispatcher,
)
from telemetry import ComponentRegistry, WebhookMetrics, configure_logging, serve_telemetry
from veille.errors import ConfigurationError
from veille.settings import Settings

from ._command import (
    Subparsers,
    add_action,
    add_actions,
    add_command,
    add_log_level,
    mark_component,
    run_async,
)

__all__ = ["register"]

_DELIVERY_COLUMNS = ("id", "subscription", "alert", "kind", "event at", "attempt", "status",
                     "http", "error", "delivered at")  # fmt: skip


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    Console(width=220).print(table)


async def _manage(args: argparse.Namespace, settings: Settings) -> int:
    async with await psycopg.AsyncConnection.connect(
        settings.database_url_for("registry").get_secret_value(), autocommit=True
    ) as conn:
        if args.action == "add":
            try:
                sub, secret = await add_subscription(
                    conn, tenant=args.tenant, care_unit=args.care_unit, url=args.url
                )
            except ValueError as exc:
                raise ConfigurationError(str(exc)) from exc
            scope = f"care unit {sub.care_unit}" if sub.care_unit else "every care unit"
            print(f"subscription {sub.id}: alert events of {sub.tenant}, {scope} -> {sub.url}")
            print(f"secret (shown once; the receiver verifies signatures with it): {secret}")
        elif args.action == "list":
            subs = await list_subscriptions(conn, tenant=args.tenant)
            rows = [(s.id, s.tenant, s.care_unit or "(all)", s.url, s.enabled, s.created_at)
                    for s in subs]  # fmt: skip
            _table("webhook subscriptions",
                   ("id", "tenant", "care unit", "url", "enabled", "created"), rows)  # fmt: skip
        elif args.action == "disable":
            if not await disable_subscription(conn, args.subscription):
                raise ConfigurationError(
                    f"no subscription {args.subscription!r}; `veille webhooks list` shows them"
                )
            print(f"subscription {args.subscription} disabled")
        else:
            rows = await list_deliveries(conn, subscription=args.subscription, limit=args.limit)
            _table("webhook deliveries (newest first)", _DELIVERY_COLUMNS, rows)
    return 0


def _cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging("webhooks", log_format=settings.log_format, level=args.log_level)
    # The dispatcher logs each attempt with its outcome; httpx's own line per request repeats it.
    logging.getLogger("httpx").setLevel(logging.WARNING)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        component = ComponentRegistry("webhooks")
        checks: list[Callable[[], dict[str, bool]]] = []

        def ready() -> dict[str, bool]:
            return checks[0]() if checks else {"started": False}

        async with serve_telemetry(
            component, ready, host=settings.metrics_host, port=settings.metrics_port
        ):
            await run_dispatcher(
                settings, stop, metrics=WebhookMetrics(component.registry), on_start=checks.append
            )

    asyncio.run(main())
    return 0


def register(sub: Subparsers) -> None:
    webhooks = add_command(
        sub, "webhooks", help="notify a URL of alert events (paging, messaging)",
        description="Webhook subscriptions: Veille POSTs each alert event (opened, escalated, "
        "acknowledged, resolved) of a tenant or care unit as signed JSON, retrying with "
        "backoff. See docs/WEBHOOKS.md.",
    )  # fmt: skip
    actions = add_actions(webhooks)
    add = add_action(
        actions, "add", run_async(_manage), help="subscribe a URL; prints its secret once"
    )
    add.add_argument("--tenant", required=True, help="establishment whose alerts are sent")
    add.add_argument("--care-unit", help="only this care unit (default: all of the tenant)")
    add.add_argument("--url", required=True, help="receiver URL (https:// in production)")
    listing = add_action(actions, "list", run_async(_manage), help="subscriptions")
    listing.add_argument("--tenant", help="only this establishment")
    disable = add_action(
        actions, "disable", run_async(_manage), help="stop notifying a subscription"
    )
    disable.add_argument("subscription", help="subscription id")
    deliveries = add_action(
        actions, "deliveries", run_async(_manage), help="the delivery log, newest first"
    )
    deliveries.add_argument("--subscription", help="only this subscription")
    deliveries.add_argument("--limit", type=int, default=50, help="rows (default 50)")
    run = add_action(
        actions, "run", _cmd_run,
        help="run the dispatcher (Kafka group veille-webhooks) until SIGTERM",
        description="Consume the alerts topic, record a delivery per subscription and event, "
        "send them and retry failures (VEILLE_WEBHOOK_* settings).",
    )  # fmt: skip
    add_log_level(mark_component(run))
