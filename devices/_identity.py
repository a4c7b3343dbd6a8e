"""Patient pseudonyms: Kafka and the readings tables never carry a national health identifier."""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["pseudonymise"]


def pseudonymise(national_id: str, key: bytes) -> str:
    """Keyed HMAC-SHA256 of the identifier: stable per key, irreversible without the mapping table.

    The key lives with the hospital (``VEILLE_PSEUDONYM_KEY``); rotating it re-keys every patient.
    """
    digest = hmac.new(key, national_id.strip().encode(), hashlib.sha256).hexdigest()
    return f"p-{digest[:24]}"
