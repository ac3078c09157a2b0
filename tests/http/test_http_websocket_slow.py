"""A WebSocket client that never reads must not hold up ingestion or the other clients.

Events are produced by driving the registry directly, in batches, the way the
ingest path does.  The slow client's queue overflows once the socket buffers
in between are full; it is then disconnected and counted, while the reading
client receives every single event.  Assertions are on counts, not on time.
"""

from __future__ import annotations

import asyncio

import aiohttp
from http_helpers import Api

from hub.core.const import EVENT_STATE_REPORTED
from hub.testing import wait_until

MAC = "aa:bb:cc:dd:ee:42"
BATCH = 20
MAX_EVENTS = 20_000
PAYLOAD = "x" * 4000  # big events fill the socket buffers between server and slow client sooner


async def test_slow_client_is_disconnected_and_counted_while_a_reading_client_gets_everything(make_api) -> None:
    api: Api = await make_api({"websocket_queue_size": 64})
    registry = api.hub.registry
    node = registry.get_or_register(MAC)
    registry.ensure_entity(node, "seq")
    registry.ensure_entity(node, "blob", "text_sensor")

    slow = await api.ws()
    await slow.send_json({"id": 1, "type": "subscribe_events", "event_type": EVENT_STATE_REPORTED})
    assert (await slow.receive_json())["success"]

    fast = await api.ws()
    await fast.send_json({"id": 1, "type": "subscribe_events", "event_type": EVENT_STATE_REPORTED})
    assert (await fast.receive_json())["success"]
    received: list[int] = []

    async def read_fast() -> None:
        async for msg in fast:
            received.append(msg.json()["event"]["data"]["states"]["seq"])

    sent = 0

    async def batch() -> None:
        """One burst of readings, as one read from the broker would produce; the reader must get them all."""
        nonlocal sent
        for _ in range(BATCH):
            registry.report_states(node, {"seq": sent, "blob": PAYLOAD}, ts=api.clock())
            sent += 1
        await wait_until(lambda: len(received) >= sent, message=f"the reader to get {sent} events", interval=0.001)

    reader = asyncio.create_task(read_fast())
    try:
        while sent < MAX_EVENTS and api.server.websockets.slow_disconnects == 0:
            await batch()
        # The slow client was cut off, counted, and its queued messages counted as dropped ...
        assert api.server.websockets.slow_disconnects == 1, f"slow client still connected after {sent} events"
        assert api.hub.metrics.value("websocket_slow_disconnects") == 1
        assert api.hub.metrics.value("websocket_messages_dropped") >= 64
        # ... while ingestion went on and the reading client got every event, in order.
        for _ in range(5):
            await batch()
        assert received == list(range(sent))
        assert api.hub.metrics.value("websocket_clients") == 1
        # The slow client finds its connection closed once it looks.
        async with asyncio.timeout(10):
            while (await slow.receive()).type not in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.ERROR,
            ):
                pass
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await fast.close()
        await slow.close()
