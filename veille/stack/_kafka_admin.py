"""Create Kafka topics with explicit partition counts (Tansu auto-creates with 4)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

__all__ = ["create_topics"]


async def create_topics(
    bootstrap: str, names: Iterable[str], partitions: int, *, timeout_s: float = 30.0
) -> None:
    wanted = list(names)
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [n for n in wanted if n not in existing]
            if missing:
                try:
                    await admin.create_topics(
                        [
                            NewTopic(n, num_partitions=partitions, replication_factor=1)
                            for n in missing
                        ]
                    )
                except TopicAlreadyExistsError:
                    pass
            return
        except KafkaConnectionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)
        finally:
            await admin.close()
