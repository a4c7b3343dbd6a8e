"""Logs: plain text for a terminal, one JSON object a line for a log collector.

Every JSON line names the component, the event (the message) and, while a batch is being
handled, its correlation id: the gateway draws one per burst and it travels inside the Kafka
records to the validator, the detector and the sink (docs/OPERATIONS.md, "Logs"). Messages
never carry a patient identity or a raw payload: the code logs pseudonyms, device ids,
reasons and counts only.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = [
    "JsonLogFormatter",
    "configure_logging",
    "logging_config",
    "correlated",
    "current_correlation_id",
    "new_correlation_id",
]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_correlation: ContextVar[str | None] = ContextVar("veille_correlation_id", default=None)


def new_correlation_id() -> str:
    """16 hex digits: unique enough across a day of bursts, short enough for every line."""
    return secrets.token_hex(8)


def current_correlation_id() -> str | None:
    return _correlation.get()


@contextmanager
def correlated(correlation_id: str | None) -> Iterator[None]:
    """Lines logged inside the block carry ``correlation_id`` (asyncio tasks started inside
    inherit it, as context variables do)."""
    token = _correlation.set(correlation_id)
    try:
        yield
    finally:
        _correlation.reset(token)


class JsonLogFormatter(logging.Formatter):
    def __init__(self, component: str) -> None:
        super().__init__()
        self._component = component

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "component": self._component,
            "logger": record.name,
            "event": record.getMessage(),
        }
        cid = getattr(record, "cid", None) or _correlation.get()
        if cid:
            line["cid"] = cid
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def _formatter(component: str, log_format: Literal["text", "json"]) -> logging.Formatter:
    return JsonLogFormatter(component) if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def logging_config(
    component: str, *, log_format: Literal["text", "json"] = "text", level: str = "INFO"
) -> dict[str, Any]:
    """The same set-up as :func:`configure_logging` as a ``logging.config.dictConfig``
    dictionary, for a framework that configures logging itself (Faust's worker)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"veille": {"()": lambda: _formatter(component, log_format)}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "veille",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level.upper(), "handlers": ["default"]},
    }


def configure_logging(
    component: str, *, log_format: Literal["text", "json"] = "text", level: str = "INFO"
) -> None:
    """The root logger's one handler, to standard error; replaces any handler set before
    (Faust's worker installs its own: a JSON collector must not get two formats)."""
    handler = logging.StreamHandler()
    handler.setFormatter(_formatter(component, log_format))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
