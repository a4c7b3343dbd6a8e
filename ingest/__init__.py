"""MQTT gateway: receive device messages, hand them to Kafka, acknowledge only then."""

from __future__ import annotations

from ._forward import MAX_PAYLOAD_BYTES, ForwardPlan, PackedRecord, plan_forward
from ._gateway import GatewayCounters, run_gateway, subscription_filters
from ._mqtt import GatewaySession, InboundMessage, MqttEndpoint

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "ForwardPlan",
    "PackedRecord",
    "GatewayCounters",
    "GatewaySession",
    "InboundMessage",
    "MqttEndpoint",
    "plan_forward",
    "run_gateway",
    "subscription_filters",
]
