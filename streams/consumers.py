"""What ``streams`` lends other components' plain aiokafka consumers, without importing
faust (``streams.runtime`` does): the guard against records a broker skipped."""

from __future__ import annotations

from ._contiguous import ContiguousFetches, Fetched

__all__ = ["ContiguousFetches", "Fetched"]
