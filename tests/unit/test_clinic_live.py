"""The live feed's fan-out: scoped by tenant and care unit, bounded per client."""

from __future__ import annotations

import orjson

from clinic._live import AlertFeed, FeedState, event_json
from clinic._scope import CareScope
from devices import AlertEvent, AlertEventKind, Priority


def _event(unit: str, tenant: str = "chu-a", n: int = 0) -> AlertEvent:
    return AlertEvent(
        f"id-{n}", AlertEventKind.OPENED, tenant, unit, "p-1", "spo2_low", "spo2",
        Priority.HIGH, 1_700_000_000_000_000 + n, 85.0, "SpO2 85 % < 90 %",
    )  # fmt: skip


async def test_a_subscriber_gets_only_its_care_units_of_its_tenant() -> None:
    feed = AlertFeed("unused:9092", "veille.alerts")
    with feed.subscribe(CareScope("chu-a", ("icu",))) as sub:
        assert sub.queue.get_nowait() == FeedState(live=False)  # told at once it is not live
        for event in (_event("icu"), _event("cardio"), _event("icu", tenant="chu-b")):
            feed.publish(event)
        assert sub.queue.qsize() == 1
        assert sub.queue.get_nowait().care_unit == "icu"  # type: ignore[union-attr]
    feed.publish(_event("icu"))  # after unsubscribing: nobody holds it
    assert sub.queue.empty()


async def test_a_client_that_does_not_keep_up_is_marked_and_never_buffers_more() -> None:
    feed = AlertFeed("unused:9092", "veille.alerts", queue_size=8)
    with (
        feed.subscribe(CareScope("chu-a", ("icu",))) as slow,
        feed.subscribe(CareScope("chu-a", ("icu",))) as fast,
    ):
        for n in range(20):
            feed.publish(_event("icu", n=n))
            while not fast.queue.empty():
                fast.queue.get_nowait()
        assert slow.overflowed and slow.queue.qsize() == 8
        assert not fast.overflowed


def test_the_page_gets_what_it_needs_to_draw_a_row() -> None:
    data = orjson.loads(orjson.dumps(event_json(_event("icu"))))
    assert data["kind"] == "opened" and data["priority"] == "high"
    assert data["at"].startswith("2023-11-14T22:13:20") and data["care_unit"] == "icu"
