"""Consumer lag per group: what ops watch to know whether workers and sinks keep up."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition

from ._offsets import true_end_offsets

__all__ = ["consumer_lag"]


async def consumer_lag(
    bootstrap: str,
    group_id: str,
    topics: Iterable[str],
    partitions: int,
    *,
    local_broker: bool,
) -> int:
    """Records in ``topics`` not yet committed by ``group_id`` (a group that never committed
    a partition lags by the whole partition)."""
    tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
    probe = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
    )
    await probe.start()
    try:
        committed = {tp: await probe.committed(tp) for tp in tps}
        ends: dict[TopicPartition, int] = dict(await probe.end_offsets(tps))
    finally:
        await probe.stop()
    if local_broker:
        ends = await true_end_offsets(bootstrap, ends)
    return sum(max(ends[tp] - (committed[tp] or 0), 0) for tp in tps)
