"""Webhook notifications, the pure part: signature, retry schedule, payload.

A hospital's messaging or paging system subscribes to alert events of a tenant (or one care
unit) with a URL; Veille POSTs each event as JSON, signed with the subscription's secret.
The signature covers ``"<timestamp>.<body>"`` so a receiver can refuse a replayed request
(docs/WEBHOOKS.md shows how). I/O lives in :mod:`clinic._webhooks_store` (database) and
:mod:`clinic._webhooks_dispatch` (Kafka and HTTP).
"""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
from datetime import UTC, datetime
from typing import Final
from urllib.parse import urlsplit

import orjson

from devices import AlertEvent

__all__ = [
    "REPLAY_TOLERANCE_S",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "DELIVERY_HEADER",
    "event_payload",
    "new_secret",
    "retry_delay_s",
    "sign",
    "validate_url",
    "verify_signature",
]

SIGNATURE_HEADER: Final = "X-Veille-Signature"
TIMESTAMP_HEADER: Final = "X-Veille-Timestamp"
DELIVERY_HEADER: Final = "X-Veille-Delivery"
REPLAY_TOLERANCE_S: Final = 300  # receivers refuse requests signed more than 5 minutes ago
_SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - a marker that makes leaked secrets greppable


def new_secret() -> str:
    """256 random bits; shown once to whoever adds the subscription."""
    return _SECRET_PREFIX + secrets.token_urlsafe(32)


def validate_url(url: str) -> str:
    """An absolute http(s) URL with a host, or ValueError that says what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"webhook URL {url!r} must be an absolute http:// or https:// URL")
    return url


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Veille-Signature`` value: ``sha256=`` and the hex HMAC of ``"<ts>.<body>"``."""
    return f"sha256={_mac(secret, timestamp, body)}"


def verify_signature(
    secret: str,
    body: bytes,
    timestamp: str,
    signature: str,
    *,
    now_s: float,
    tolerance_s: float = REPLAY_TOLERANCE_S,
) -> bool:
    """What a receiver does: the timestamp is recent and the HMAC matches (constant time)."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now_s - ts) > tolerance_s:
        return False
    return hmac.compare_digest(signature.encode(), sign(secret, ts, body).encode())


def retry_delay_s(attempts: int, *, base_s: float, max_s: float, rng: random.Random) -> float:
    """Delay after ``attempts`` failed tries (1, 2, ...): exponential, capped, "equal jitter".

    The ceiling doubles from ``base_s`` up to ``max_s``; the delay is drawn in its upper
    half, so retries of many deliveries after one outage spread out but never come early.
    """
    if attempts < 1:
        raise ValueError(f"attempts counts failed tries and starts at 1, got {attempts}")
    ceiling = min(max_s, base_s * 2.0 ** min(attempts - 1, 62))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def _instant(at_us: int) -> str:
    return datetime.fromtimestamp(at_us / 1e6, UTC).isoformat().replace("+00:00", "Z")


def event_payload(event: AlertEvent, *, delivery_id: int, subscription: str) -> bytes:
    """The JSON body: the event, the alert it belongs to, and the ids a receiver dedupes by."""
    return orjson.dumps(
        {
            "type": f"alert.{event.kind.value}",
            "delivery_id": delivery_id,
            "subscription_id": subscription,
            "alert": {
                "id": event.alert_id,
                "tenant": event.tenant,
                "care_unit": event.care_unit,
                "patient": event.patient,
                "rule": event.rule,
                "metric": event.metric,
                "priority": event.priority.value,
                "escalation_level": event.level,
            },
            "event": {
                "kind": event.kind.value,
                "at": _instant(event.at_us),
                "value": event.value,
                "message": event.message,
                "actor": event.actor,
            },
        }
    )
