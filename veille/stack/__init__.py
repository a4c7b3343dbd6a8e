"""The embedded local stack used by ``make demo`` and the integration tests."""

from __future__ import annotations

from ._stack import LocalStack, ServiceStatus, default_state_dir

__all__ = ["LocalStack", "ServiceStatus", "default_state_dir"]
