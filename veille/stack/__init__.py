"""The embedded local stack used by ``make demo`` and the integration tests."""

from __future__ import annotations

from ._stack import LocalStack, ServiceStatus

__all__ = ["LocalStack", "ServiceStatus"]
