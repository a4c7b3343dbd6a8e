"""Two strangers at the broker's door, turned away on screen: what TLS and accounts buy."""

from __future__ import annotations

import uuid
from dataclasses import replace

from ingest import MqttEndpoint
from veille.publisher import BrokerRefusedError, FleetPublisher

__all__ = ["door_checks"]


def door_checks(fleet_account: MqttEndpoint) -> list[str]:
    """Connect without an account, then in plaintext; one line per attempt saying what the
    broker did. A stranger let in is said as loudly as one refused."""
    strangers = {
        "a client without an account": replace(fleet_account, username=None, password=None),
        "a plaintext client": replace(fleet_account, tls=False),
    }
    lines = []
    for who, endpoint in strangers.items():
        try:
            FleetPublisher(endpoint, f"veille-demo-stranger-{uuid.uuid4().hex[:6]}").close()
        except (BrokerRefusedError, TimeoutError) as refused:
            reason = str(refused).split(": ", 1)[-1].split(" (check")[0]
            lines.append(f"{who}: refused by the broker ({reason})")
        else:
            lines.append(f"{who}: ACCEPTED by the broker: the broker is not secured")
    return lines
