"""The MQTT topic contract: ``veille/v1/{tenant}/{device_id}/{stream}``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["DeviceTopic", "SUBSCRIPTION_FILTER", "device_topic", "parse_device_topic"]

TOPIC_ROOT: Final = "veille/v1"
SUBSCRIPTION_FILTER: Final = f"{TOPIC_ROOT}/+/+/+"
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_TOPIC_RE: Final = re.compile(rf"^veille/v1/({_SEGMENT})/({_SEGMENT})/({_SEGMENT})$")


@dataclass(frozen=True, slots=True)
class DeviceTopic:
    tenant: str
    device_id: str
    stream: str


def device_topic(tenant: str, device_id: str, stream: str = "readings") -> str:
    return f"{TOPIC_ROOT}/{tenant}/{device_id}/{stream}"


def parse_device_topic(topic: str) -> DeviceTopic | None:
    """Split a publish topic into its parts; None when it does not follow the contract."""
    match = _TOPIC_RE.fullmatch(topic)  # match() with $ let a trailing newline through
    if match is None:
        return None
    return DeviceTopic(*match.groups())
