"""A fast QoS 1 telemetry publisher for benchmarks: many nodes, few connections, its own flow control.

gmqtt raises OverflowError once more QoS 1 messages are in flight than the
broker's receive-maximum allows, so the publisher keeps a window per
connection: it publishes while fewer than ``window`` messages await their
PUBACK and otherwise waits for the broker to acknowledge some.  The window is
capped by what the broker allows: after CONNACK, gmqtt's packet-id pool holds
the broker's receive maximum (Mosquitto's ``max_inflight_messages``, 20 by
default; 65,535 when the broker names none) and hands out at most one id fewer.  A message
counts as *sent* only once the broker acknowledged it (PUBACK), which is
what "lost = sent - stored" in the ingest benchmark relies on.

Run alone:  python benchmarks/loadgen.py --broker mqtt://127.0.0.1:1883 --nodes 100 --messages 100000
It prints one JSON line: {"sent": …, "seconds": …, "msgs_per_s": …, "cpu_seconds": …, "window": …};
``cpu_seconds`` is the CPU this process spent publishing (a load generator is part of the machine's load).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
from urllib.parse import urlsplit

import orjson
from gmqtt import Client
from gmqtt.mqtt.constants import MQTTv50, MQTTv311
from gmqtt.storage import PersistentStorage


class _WindowStorage(PersistentStorage):
    """gmqtt's in-flight store that also wakes the publisher when a PUBACK frees a slot."""

    def __init__(self) -> None:
        super().__init__()
        self.acked = 0
        self.freed = asyncio.Event()

    def remove_message_by_mid(self, mid: int) -> None:
        before = len(self._messages)
        super().remove_message_by_mid(mid)
        if len(self._messages) < before:
            self.acked += 1
            self.freed.set()


CONNECT_TIMEOUT = 10.0
"""Seconds to connect to the broker."""
ACK_TIMEOUT = 60.0
"""Seconds without any PUBACK after which the publisher gives up (a stalled broker): every wait is bounded."""


async def _acked(storage: _WindowStorage) -> None:
    """Wait until a PUBACK frees a slot; TimeoutError after :data:`ACK_TIMEOUT` s without one."""
    storage.freed.clear()
    async with asyncio.timeout(ACK_TIMEOUT):
        await storage.freed.wait()


def broker_window(client: Client) -> int:
    """QoS 1 messages this connection may have in flight: what gmqtt's packet-id pool allows after CONNACK.

    gmqtt sets the pool's size to the broker's receive maximum and raises
    OverflowError once ``size - 1`` ids are in use.
    """
    return max(client._connection._handler.id_generator._max - 1, 1)


class _CorkedTransport:
    """Coalesces the writes of one event-loop iteration into one ``send``.

    asyncio's transport sends at once when its buffer is empty, so publishing
    costs a system call per message (about 20 µs here, more than building the
    packet).  Holding writes until the loop comes round again sends a burst of
    publishes in one call.
    """

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._buffer = bytearray()
        self._loop = asyncio.get_running_loop()

    def write(self, data: bytes) -> None:
        if not self._buffer:
            self._loop.call_soon(self._flush)
        self._buffer += data

    def _flush(self) -> None:
        if self._buffer and not self._transport.is_closing():
            self._transport.write(bytes(self._buffer))
        self._buffer.clear()

    def __getattr__(self, name: str):
        return getattr(self._transport, name)


def node_macs(nodes: int, seed: int = 1, stem: str | None = None) -> list[str]:
    """Deterministic, distinct MACs in the ESP32's Espressif range, upper-case colon form.

    With ``stem`` (three bytes, ``"5E:1A:9C"``) the MACs are the stem and the node's index instead: a run that
    picks a random stem publishes on topics no other run uses, so on a shared broker no one else's queue
    bound to its own MACs takes its messages, nor it theirs.
    """
    if stem is not None:
        return [f"{stem}:{i >> 16 & 0xFF:02X}:{i >> 8 & 0xFF:02X}:{i & 0xFF:02X}" for i in range(nodes)]
    rng = random.Random(seed)
    macs: set[str] = set()
    while len(macs) < nodes:
        tail = rng.getrandbits(24)
        macs.add("24:0A:C4:" + ":".join(f"{(tail >> s) & 0xFF:02X}" for s in (16, 8, 0)))
    return sorted(macs)


def payload(mac: str, seq: int, now: float) -> bytes:
    """A ~200-byte telemetry message like an ESP32 sends."""
    return orjson.dumps(
        {
            "timestamp": round(now, 3),
            "seq": seq,
            "temperature": round(20 + (seq % 100) / 10, 1),
            "humidity": 40 + seq % 30,
            "uptime": seq * 5,
            "free_heap": 120000 + seq % 5000,
            "wifi_rssi": -40 - seq % 30,
            "status": "online",
            "mac_address": mac,
        }
    )


async def publish(
    broker: str,
    nodes: int,
    messages: int,
    *,
    connections: int = 4,
    window: int = 500,
    version: int = MQTTv50,
    mac_stem: str | None = None,
) -> dict:
    """Publish ``messages`` spread round-robin over ``nodes`` and wait for every PUBACK."""
    parts = urlsplit(broker)
    macs = node_macs(nodes, stem=mac_stem)
    clients: list[tuple[Client, _WindowStorage, int]] = []
    for index in range(connections):
        storage = _WindowStorage()
        client = Client(f"loadgen-{uuid.uuid4().hex[:8]}-{index}", persistent_storage=storage)
        if parts.username:
            client.set_auth_credentials(parts.username, parts.password)
        async with asyncio.timeout(CONNECT_TIMEOUT):
            await client.connect(parts.hostname or "127.0.0.1", parts.port or 1883, version=version)
        protocol = client._connection._protocol
        protocol._transport = _CorkedTransport(protocol._transport)
        clients.append((client, storage, min(window, broker_window(client))))

    async def run(offset: int) -> None:
        client, storage, limit = clients[offset]
        for seq in range(offset, messages, connections):
            while len(storage._messages) >= limit:
                await _acked(storage)
            mac = macs[seq % nodes]
            client.publish(f"devices/{mac}/data", payload(mac, seq, time.time()), qos=1)
            if seq % 64 == 0:
                await asyncio.sleep(0)  # let PUBACKs in
        while storage._messages:
            await _acked(storage)

    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        await asyncio.gather(*(run(i) for i in range(connections)))
    except TimeoutError:
        raise SystemExit(f"loadgen: no PUBACK from {parts.hostname}:{parts.port} for {ACK_TIMEOUT:.0f} s") from None
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    sent = sum(storage.acked for _client, storage, _limit in clients)
    for client, _storage, _limit in clients:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            await client.disconnect()
    return {
        "sent": sent,
        "seconds": round(seconds, 3),
        "msgs_per_s": round(sent / seconds) if seconds else 0,
        "cpu_seconds": round(cpu, 3),
        "window": min(limit for _client, _storage, limit in clients),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", required=True)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument(
        "--window", type=int, default=500, help="QoS 1 messages in flight per connection (capped by the broker's)"
    )
    parser.add_argument("--protocol", choices=("5", "3.1.1"), default="5", help="3.1.1 for RabbitMQ's MQTT plugin")
    parser.add_argument("--mac-stem", help="the nodes' MACs are this (three bytes, 5E:1A:9C) and their index")
    args = parser.parse_args()
    version = MQTTv50 if args.protocol == "5" else MQTTv311
    result = asyncio.run(
        publish(
            args.broker,
            args.nodes,
            args.messages,
            connections=args.connections,
            window=args.window,
            version=version,
            mac_stem=args.mac_stem,
        )
    )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
