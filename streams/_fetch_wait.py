"""How long a Faust worker's fetch may wait on the broker: ``VEILLE_WORKER_FETCH_MAX_WAIT_MS``.

faust-streaming 0.15 builds its aiokafka consumer with ``fetch_max_wait_ms=1500`` written
into ``AIOKafkaConsumerThread._create_worker_consumer``; no Faust setting reaches it. On Kafka
a fetch returns as soon as a record is there, so the figure only bounds idle polling. The
embedded Tansu sleeps before every answer, records or not: there the wait is a trade between
each hop's delay and the broker's CPU (measured in docs/LOCAL_STACK.md: 100 ms took an idle
pipeline's publish -> alert p99 from 1,524 to 280 ms, and cost the broker 2-5x the CPU per
message at 2,744 msg/s, where the detector then fell behind). The default stays Faust's.

The patch sets the wait on the consumer Faust creates, before it starts (aiokafka hands
``_fetch_max_wait_ms`` to its fetcher in ``start``). The pin check of ``veille.library_pins``
stops the worker if Faust no longer has the member replaced.
"""

from __future__ import annotations

from typing import Any, Final

from veille.library_pins import FAUST_PIN, check_patchable

__all__ = ["FETCH_WAIT_MEMBERS", "install_fetch_wait"]

# The member of faust's ``AIOKafkaConsumerThread`` the patch wraps.
FETCH_WAIT_MEMBERS: Final = ("_create_worker_consumer",)


def install_fetch_wait(max_wait_ms: int) -> None:
    """Make every worker consumer Faust creates from now on wait at most ``max_wait_ms``."""
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    if max_wait_ms < 1:
        raise ValueError(f"a fetch wait must be at least 1 ms, got {max_wait_ms}")
    check_patchable(FAUST_PIN, AIOKafkaConsumerThread, FETCH_WAIT_MEMBERS)
    thread_class: Any = AIOKafkaConsumerThread
    thread_class._veille_fetch_max_wait_ms = max_wait_ms  # one Faust app per worker process
    if getattr(thread_class, "_veille_fetch_wait_patched", False):
        return
    original = thread_class._create_worker_consumer

    def _create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        if not hasattr(consumer, "_fetch_max_wait_ms"):
            raise RuntimeError(
                "aiokafka's consumer has no _fetch_max_wait_ms: check streams/_fetch_wait.py "
                "against the installed aiokafka"
            )
        consumer._fetch_max_wait_ms = thread_class._veille_fetch_max_wait_ms
        return consumer

    thread_class._create_worker_consumer = _create_worker_consumer
    thread_class._veille_fetch_wait_patched = True
