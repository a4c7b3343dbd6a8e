"""Webhook signing, verification, retry schedule and payload (pure: no HTTP, no database)."""

from __future__ import annotations

import hashlib
import hmac
import random

import orjson
import pytest

from clinic._webhooks import (
    event_payload,
    new_secret,
    retry_delay_s,
    sign,
    validate_url,
    verify_signature,
)
from devices import AlertEvent, AlertEventKind, Priority
from veille.settings import FhirSettings, WebhookSettings

SECRET = "whsec_test-secret"
BODY = b'{"type":"alert.opened"}'
NOW = 1_780_000_000


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, NOW, BODY) == f"sha256={expected}"


def test_a_fresh_untampered_request_verifies() -> None:
    assert verify_signature(SECRET, BODY, str(NOW), sign(SECRET, NOW, BODY), now_s=NOW + 10)


@pytest.mark.parametrize(
    ("secret", "body", "timestamp", "now"),
    [
        ("whsec_other", BODY, NOW, NOW),  # wrong secret
        (SECRET, BODY + b" ", NOW, NOW),  # body changed
        (SECRET, BODY, NOW + 1, NOW),  # timestamp changed after signing
        (SECRET, BODY, NOW, NOW + 301),  # replayed more than 5 minutes later
        (SECRET, BODY, NOW, NOW - 301),  # dated in the future
    ],
)
def test_tampered_or_replayed_requests_are_refused(
    secret: str, body: bytes, timestamp: int, now: int
) -> None:
    signature = sign(SECRET, NOW, BODY)
    assert not verify_signature(secret, body, str(timestamp), signature, now_s=now)


def test_a_timestamp_that_is_not_a_number_is_refused() -> None:
    assert not verify_signature(SECRET, BODY, "yesterday", sign(SECRET, NOW, BODY), now_s=NOW)


def test_backoff_doubles_up_to_the_cap_within_its_upper_half() -> None:
    rng = random.Random(7)
    for attempts, ceiling in [
        (1, 2.0),
        (2, 4.0),
        (3, 8.0),
        (4, 16.0),
        (8, 256.0),
        (9, 300.0),
        (40, 300.0),
    ]:
        delays = [retry_delay_s(attempts, base_s=2.0, max_s=300.0, rng=rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), (
            attempts,
            min(delays),
            max(delays),
        )
        assert max(delays) - min(delays) > ceiling / 4  # jittered, not one fixed delay


def test_backoff_refuses_an_attempt_count_below_one() -> None:
    with pytest.raises(ValueError, match="starts at 1"):
        retry_delay_s(0, base_s=1.0, max_s=10.0, rng=random.Random(1))


def test_default_schedule_gives_up_within_the_max_age() -> None:
    s = WebhookSettings()
    worst = sum(
        min(s.backoff_max_s, s.backoff_base_s * 2 ** (n - 1)) for n in range(1, s.max_attempts)
    )
    assert worst < s.max_age_s  # max_attempts, not the age, ends the default schedule


def test_payload_carries_event_alert_and_ids_and_no_national_identifier() -> None:
    event = AlertEvent(
        "a1b2",
        AlertEventKind.ACKNOWLEDGED,
        "chu-a",
        "icu",
        "p-0123",
        "spo2_low",
        "spo2",
        Priority.HIGH,
        1_780_000_000_123_456,
        85.0,
        "acknowledged by nurse-42",
        "nurse-42",
        1,
    )
    body = orjson.loads(event_payload(event, delivery_id=17, subscription="sub-1"))
    assert body["type"] == "alert.acknowledged"
    assert (body["delivery_id"], body["subscription_id"]) == (17, "sub-1")
    assert body["alert"] == {
        "id": "a1b2",
        "tenant": "chu-a",
        "care_unit": "icu",
        "patient": "p-0123",
        "rule": "spo2_low",
        "metric": "spo2",
        "priority": "high",
        "escalation_level": 1,
    }
    assert body["event"] == {
        "kind": "acknowledged",
        "at": "2026-05-28T20:26:40.123456Z",
        "value": 85.0,
        "message": "acknowledged by nurse-42",
        "actor": "nurse-42",
    }


def test_secrets_are_long_random_and_distinct() -> None:
    secrets = {new_secret() for _ in range(100)}
    assert len(secrets) == 100
    assert all(s.startswith("whsec_") and len(s) > 40 for s in secrets)


@pytest.mark.parametrize(
    "url", ["ftp://pager.example/x", "pager.example/hook", "https://", "javascript:alert(1)"]
)
def test_only_absolute_http_urls_are_accepted(url: str) -> None:
    with pytest.raises(ValueError, match="absolute http"):
        validate_url(url)
    assert validate_url("https://pager.example/hook") == "https://pager.example/hook"


def test_every_webhook_and_fhir_setting_is_documented() -> None:
    from pathlib import Path

    docs = Path(__file__).resolve().parents[2] / "docs"
    webhooks, fhir = (docs / "WEBHOOKS.md").read_text(), (docs / "FHIR.md").read_text()
    assert [
        n for n in WebhookSettings.model_fields if f"`VEILLE_WEBHOOK_{n.upper()}`" not in webhooks
    ] == []
    assert [n for n in FhirSettings.model_fields if f"`VEILLE_FHIR_{n.upper()}`" not in fhir] == []
