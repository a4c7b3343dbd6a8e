"""How many items a packed Kafka record may hold: a byte budget well under Kafka's limit.

Kafka refuses a record larger than the producer's ``max_request_size`` (1 MiB by default,
the broker's ``message.max.bytes`` likewise). A packed record grows with its burst or event
group: after a 30 s stall of the gateway or of Kafka, one validator group packed 1,029,349
bytes for one partition, Kafka refused it (``MessageSizeTooLargeError``) and the agent
stopped (full fault run, gateway-stall #3). So a packed record closes at
``RECORD_BUDGET_BYTES`` and the next one starts: half the limit, so one item of the largest
size the gateway accepts (a 256 KiB payload) always fits with room to spare.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["RECORD_BUDGET_BYTES", "chunks_within"]

RECORD_BUDGET_BYTES = 512 * 1024


def chunks_within(sizes: Sequence[int], budget: int = RECORD_BUDGET_BYTES) -> list[range]:
    """Consecutive index ranges of ``sizes`` whose sums stay within ``budget``; an item
    larger than the budget alone gets a range of its own. Order is kept."""
    if budget <= 0:
        raise ValueError("a record budget is a positive number of bytes")
    ranges: list[range] = []
    start, total = 0, 0
    for i, size in enumerate(sizes):
        if i > start and total + size > budget:
            ranges.append(range(start, i))
            start, total = i, 0
        total += size
    if start < len(sizes):
        ranges.append(range(start, len(sizes)))
    return ranges
