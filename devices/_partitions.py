"""Which partition of a topic a key belongs to: Kafka's own rule, computed by Veille.

Records are packed per partition (one record for every device, or every patient, of a burst
that hashes there), so Veille picks the partition itself instead of letting the producer hash
one key per record. It must pick exactly what Kafka's default partitioner would for the key
alone: the detector's state of a patient lives on the partition of the patient's readings,
and alert events, which are still sent one per patient with the producer's partitioner, must
land on that same partition.

``_murmur2`` is the Java client's hash (``org.apache.kafka.common.utils.Utils.murmur2``), copied
from aiokafka 0.14.0 (``aiokafka/partitioner.py``, Apache License 2.0) and typed: the pure core
must import without Kafka's client (tests/unit/test_pure_core.py), and a unit test holds the
copy equal to aiokafka's ``DefaultPartitioner``.
"""

from __future__ import annotations

__all__ = ["KeyPartitioner"]

_CACHE_LIMIT = 200_000
_MASK = 0xFFFFFFFF


def _murmur2(data: bytes) -> int:
    length = len(data)
    m = 0x5BD1E995
    h = (0x9747B28C ^ length) & _MASK
    for i in range(0, length - length % 4, 4):
        k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
        k = (k * m) & _MASK
        k ^= k >> 24
        k = (k * m) & _MASK
        h = ((h * m) & _MASK) ^ k
    tail = length & ~3
    extra = length % 4
    if extra >= 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h ^= data[tail]
        h = (h * m) & _MASK
    h ^= h >> 13
    h = (h * m) & _MASK
    h ^= h >> 15
    return h


class KeyPartitioner:
    """``partition_of(key)`` for a topic of ``partitions`` partitions, cached: the pure-Python
    hash costs microseconds and a fleet sends from the same keys all day."""

    def __init__(self, partitions: int) -> None:
        if partitions < 1:
            raise ValueError(f"a topic has at least one partition, not {partitions}")
        self.partitions = partitions
        self._known: dict[str, int] = {}

    def partition_of(self, key: str) -> int:
        known = self._known.get(key)
        if known is not None:
            return known
        if len(self._known) >= _CACHE_LIMIT:
            self._known.clear()
        # Kafka's DefaultPartitioner: (murmur2(key) & 0x7fffffff) % partitions.
        partition = (_murmur2(key.encode()) & 0x7FFFFFFF) % self.partitions
        self._known[key] = partition
        return partition
