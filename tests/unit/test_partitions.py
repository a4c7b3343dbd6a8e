"""KeyPartitioner picks the partition Kafka's default partitioner would for the same key."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from devices import KeyPartitioner


@given(key=st.text(max_size=80), partitions=st.integers(min_value=1, max_value=64))
def test_the_partition_is_the_one_kafkas_partitioner_gives_the_key(
    key: str, partitions: int
) -> None:
    everything = list(range(partitions))
    expected = DefaultPartitioner()(key.encode(), everything, everything)
    partitioner = KeyPartitioner(partitions)
    assert partitioner.partition_of(key) == expected
    assert partitioner.partition_of(key) == expected  # from the cache this time


def test_a_topic_without_partitions_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one partition"):
        KeyPartitioner(0)
