"""One turn of the event loop hands over at most PACKETS_PER_TURN packets (fewer after TURN_SECONDS): a burst is
spread over several turns.

A scripted broker on loopback accepts the client's CONNECT and then writes a burst of QoS 1 publishes in one
``write``; the client's reader hands them over in order, yielding the loop between slices of at most
``PACKETS_PER_TURN``.  A ticker that re-arms itself with ``call_soon`` runs once per loop iteration, so the number
of ticks between two deliveries says whether the loop got a turn in between.
"""

from __future__ import annotations

import asyncio

import pytest
from gmqtt.mqtt.constants import MQTTv50, MQTTv311
from mqtt_helpers import unique

from hub.plugins.mqtt import client as mqtt_client
from hub.plugins.mqtt.client import CHECK_EVERY, PACKETS_PER_TURN, HubMqttClient
from hub.testing import wait_until

BURST = PACKETS_PER_TURN * 4 + 17


def _publish(mid: int, payload: bytes, version: int) -> bytes:
    topic = b"devices/aa/data"
    body = len(topic).to_bytes(2, "big") + topic + mid.to_bytes(2, "big")
    body += (b"\x00" if version == MQTTv50 else b"") + payload
    assert len(body) < 128  # a one-byte Remaining Length
    return bytes([0x32, len(body)]) + body


class ScriptedBroker:
    """Answers CONNECT with a CONNACK, then sends ``burst`` at once; keeps the connection open until closed."""

    def __init__(self, burst: bytes, version: int) -> None:
        self._burst = burst
        self._connack = b"\x20\x03\x00\x00\x00" if version == MQTTv50 else b"\x20\x02\x00\x00"
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        await reader.read(1)  # the CONNECT has begun to arrive
        writer.write(self._connack + self._burst)
        await writer.drain()
        while await reader.read(65536):  # PUBACKs, DISCONNECT: read and ignore
            pass

    async def close(self) -> None:
        for writer in self._writers:
            writer.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def _deliveries_per_turn(version: int) -> list[int]:
    """Runs the burst through a client; how many packets each loop turn handed over (after checking the order)."""
    broker = ScriptedBroker(b"".join(_publish(mid, b"%d" % mid, version) for mid in range(1, BURST + 1)), version)
    port = await broker.start()
    client = HubMqttClient(unique("turns"))
    events: list[int | None] = []  # a packet id per delivery, None per loop iteration
    client.on_qos1_message = lambda mid, topic, payload, retained: events.append(mid)
    loop = asyncio.get_running_loop()
    ticking = True

    def tick() -> None:
        if ticking:
            if events and events[-1] is not None:  # one marker per run of deliveries is enough
                events.append(None)
            loop.call_soon(tick)

    loop.call_soon(tick)
    try:
        await client.connect("127.0.0.1", port, version=version)
        await wait_until(lambda: sum(e is not None for e in events) == BURST, message=f"{BURST} deliveries")
    finally:
        ticking = False
        await client.disconnect()
        await broker.close()

    delivered = [e for e in events if e is not None]
    assert delivered == list(range(1, BURST + 1))  # every message, once, in order
    runs: list[int] = []  # deliveries between two loop iterations
    for event in events:
        if event is None:
            runs.append(0)
        elif runs:
            runs[-1] += 1
        else:
            runs.append(1)
    return [run for run in runs if run]


@pytest.mark.parametrize("version", [MQTTv50, MQTTv311])
async def test_a_burst_in_one_read_is_handed_over_across_loop_turns_in_order(version: int) -> None:
    runs = await _deliveries_per_turn(version)
    assert max(runs) <= PACKETS_PER_TURN
    assert len(runs) >= -(-BURST // PACKETS_PER_TURN)  # at least five turns for four and a bit slices


async def test_a_turn_whose_time_is_up_yields_at_the_next_clock_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mqtt_client, "TURN_SECONDS", 0.0)  # always up: every clock check ends the turn
    runs = await _deliveries_per_turn(MQTTv311)
    assert max(runs) <= CHECK_EVERY
    assert len(runs) >= -(-BURST // CHECK_EVERY)
