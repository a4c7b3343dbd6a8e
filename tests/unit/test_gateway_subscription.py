"""VEILLE_GATEWAY_SUBSCRIPTION: a plain subscription by default, shared on request, and a
session switched from one mode to the other drops the old filter after taking the new one."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from devices import SUBSCRIPTION_FILTER
from ingest._gateway import SHARED_FILTER, subscription_filters
from ingest._mqtt import GatewaySession, InboundMessage, MqttEndpoint
from veille.settings import Settings


def test_plain_is_the_default_and_drops_the_shared_filter() -> None:
    assert Settings().gateway_subscription == "plain"
    assert subscription_filters("plain") == (SUBSCRIPTION_FILTER, SHARED_FILTER)


def test_shared_subscribes_to_the_gateways_group(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEILLE_GATEWAY_SUBSCRIPTION", "shared")
    mode = Settings().gateway_subscription
    assert subscription_filters(mode) == (
        f"$share/veille-gateways/{SUBSCRIPTION_FILTER}",
        SUBSCRIPTION_FILTER,
    )


def test_an_unknown_mode_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEILLE_GATEWAY_SUBSCRIPTION", "round-robin")
    with pytest.raises(ValidationError, match="plain"):
        Settings()


class _RecordingClient:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def subscribe(self, topic: str, qos: int) -> None:
        self.calls.append(("subscribe", topic))

    def unsubscribe(self, topic: str) -> None:
        self.calls.append(("unsubscribe", topic))


async def _connect(session_present: bool) -> list[tuple[str, str]]:
    session = GatewaySession(
        MqttEndpoint.parse("mqtt://127.0.0.1:1"),
        client_id="veille-test",
        subscription=SUBSCRIPTION_FILTER,
        stale_subscription=SHARED_FILTER,
        receive_maximum=10,
        session_expiry_s=60,
        queue=asyncio.Queue[InboundMessage](),
    )
    client = _RecordingClient()
    flags = SimpleNamespace(session_present=session_present)
    reason: Any = SimpleNamespace(is_failure=False)
    session._on_connect(client, None, flags, reason, None)  # type: ignore[arg-type]
    return client.calls


async def test_a_kept_session_subscribes_first_then_drops_the_other_mode() -> None:
    assert await _connect(session_present=True) == [
        ("subscribe", SUBSCRIPTION_FILTER),
        ("unsubscribe", SHARED_FILTER),
    ]


async def test_a_new_session_only_subscribes() -> None:
    assert await _connect(session_present=False) == [("subscribe", SUBSCRIPTION_FILTER)]
