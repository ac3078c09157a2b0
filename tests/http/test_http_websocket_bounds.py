"""WebSocket bounds: the send queue in bytes (1013 and a reason, memory freed), subscriptions per client.

Before: 20 unread ``get_nodes`` on one connection took the hub from 195 to 682 MB (the queue counted
messages, not bytes), and 20,000 subscriptions then a close stalled the event loop for 11.7 s (each
unsubscription rebuilt the list of its event type).
"""

from __future__ import annotations

import asyncio

import aiohttp
from http_helpers import Api

from hub import EVENT_STATE_CHANGED, EVENT_STATE_REPORTED
from hub.testing import wait_until

QUEUE_BYTES = 2**20


def mac(i: int) -> str:
    return ":".join(f"{b:02x}" for b in (0x020000000000 + i).to_bytes(6, "big"))


async def test_a_client_over_the_byte_bound_is_closed_with_1013_and_its_queue_freed(make_api) -> None:
    # The message bound is far away: only bytes can trip it (each page is about 0.5 MB).
    api: Api = await make_api({"websocket_queue_bytes": QUEUE_BYTES, "websocket_queue_size": 100_000})
    registry = api.hub.registry
    for i in range(30):
        node = registry.get_or_register(mac(i))
        for k in range(100):
            registry.ensure_entity(node, f"reading_{k}", attributes={"note": "x" * 40})
    slow = await api.ws()
    other = await api.ws()
    await other.send_json({"id": 1, "type": "subscribe_events", "event_type": EVENT_STATE_REPORTED})
    assert (await other.receive_json())["success"]
    await slow.send_json({"id": 1, "type": "subscribe_events", "event_type": EVENT_STATE_CHANGED})
    assert (await slow.receive_json())["success"]

    msg_id = 1
    websockets = api.server.websockets
    while websockets.slow_disconnects == 0 and msg_id < 500:  # socket buffers fill first, then the queue
        msg_id += 1
        await slow.send_json({"id": msg_id, "type": "get_nodes"})
        await asyncio.sleep(0.01)
    assert websockets.slow_disconnects == 1, f"still connected after {msg_id - 1} unread pages"
    # Cut off at once: its queue freed, its subscription gone, no longer counted as a client.
    await wait_until(lambda: websockets.stats()["clients"] == 1, message="the slow client to be detached")
    assert websockets.stats()["queued_bytes"] == 0 and websockets.stats()["subscriptions"] == 1
    assert api.hub.metrics.value("websocket_messages_dropped") >= 1
    # When it reads again it gets what was already on the wire, then the close frame saying why.
    async with asyncio.timeout(30):
        while (message := await slow.receive()).type == aiohttp.WSMsgType.TEXT:
            pass
    assert message.type == aiohttp.WSMsgType.CLOSE, message
    assert message.data == aiohttp.WSCloseCode.TRY_AGAIN_LATER
    assert message.extra.startswith("too slow: over 1048576 bytes")
    # The other client was never affected.
    await other.send_json({"id": 2, "type": "ping"})
    assert (await other.receive_json())["type"] == "pong"
    await other.close()


async def test_subscriptions_per_client_are_capped_with_a_clear_error(make_api) -> None:
    api: Api = await make_api({"websocket_max_subscriptions": 5})
    ws = await api.ws()
    for msg_id in range(1, 6):
        await ws.send_json({"id": msg_id, "type": "subscribe_events", "node_id": mac(msg_id)})
        assert (await ws.receive_json())["success"]
    await ws.send_json({"id": 6, "type": "subscribe_events"})
    answer = await ws.receive_json()
    assert not answer["success"] and answer["error"]["code"] == "too_many_subscriptions"
    assert "at most 5 subscriptions" in answer["error"]["message"]
    await ws.send_json({"id": 7, "type": "unsubscribe_events", "subscription": 3})
    assert (await ws.receive_json())["success"]
    await ws.send_json({"id": 8, "type": "subscribe_events"})
    assert (await ws.receive_json())["success"]  # room again
    assert api.server.websockets.stats()["subscriptions"] == 5
    await ws.close()
    await wait_until(lambda: api.server.websockets.stats()["clients"] == 0, message="the client to go")
    assert api.server.websockets.stats()["subscriptions"] == 0


async def test_many_subscriptions_are_all_dropped_when_the_client_goes(make_api) -> None:
    api: Api = await make_api({"websocket_max_subscriptions": 3000})
    ws = await api.ws()
    for msg_id in range(1, 3001):  # one event type, as the 20,000 of the report: one group in the fan-out
        await ws.send_json({"id": msg_id, "type": "subscribe_events", "event_type": EVENT_STATE_CHANGED})
    for _ in range(3000):
        assert (await ws.receive_json())["success"]
    assert api.server.websockets.stats()["subscriptions"] == 3000
    assert api.hub.bus.has_listeners(EVENT_STATE_CHANGED)
    await ws.close()
    await wait_until(lambda: api.server.websockets.stats()["clients"] == 0, message="the client to go")
    assert api.server.websockets.stats()["subscriptions"] == 0
    assert not api.hub.bus.has_listeners(EVENT_STATE_CHANGED)  # the fan-out stopped listening
