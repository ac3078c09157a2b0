"""A 10,000-node fleet on the RabbitMQ path, paced as real nodes publish: hub RSS and the per-node state.

    python benchmarks/fleet_rabbitmq.py --db postgresql+asyncpg://postgres@127.0.0.1/bench \\
        --rabbitmq amqp://guest:guest@127.0.0.1:5672/ --rabbitmq-mqtt mqtt://127.0.0.1:1884 \\
        --nodes 10000 --interval 5 --duration 120

What runs, each in its own process as in production:

* ``--workers`` (default 1) ``hub run --role worker`` and one ``hub run --role api`` on one PostgreSQL
  database, their queues under a prefix of their own and bound to this run's MACs only (a random three-byte
  stem and the node's index: one binding per node), so on a shared RabbitMQ no other run's or test's
  messages get in, and no one else's queue takes this fleet's.
* A paced load generator (this file, ``publish``): every node publishes one telemetry message (MQTT 3.1.1,
  QoS 1, the JSON contract) every ``--interval`` seconds, its slot spread evenly over the interval, into
  RabbitMQ's MQTT plugin.  Nodes are multiplexed over ``--connections`` MQTT connections (10,000 real clients
  would measure the load generator and the broker's per-connection memory, not the hub); so no node has a
  Last Will or birth message, and status comes from presence, which marks a node online when heard.

Measured during the steady state (after every node was registered): each hub process's RSS every second
(peak and last); at the end, while the fleet still publishes, the per-node state as PostgreSQL holds it
(nodes, online, ``last_seen`` age: median, p99, max, and how many are older than two intervals; the database
keeps ``last_seen`` to 5 s, so up to interval + 5 s is fresh), the ingest lag (now minus the newest stored
reading's own timestamp, sampled every 5 s) and the telemetry queue's depth, and as the API instance serves it (``GET /api/nodes``: counts per status and the same ages over every page).  Then the
fleet stops and the count of stored rows against the messages the broker acknowledged gives ``lost`` and
``duplicates``.  Every wait is bounded.  Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import yaml
from ingest_rabbitmq import clear, count
from loadgen import _CorkedTransport, _WindowStorage, node_macs, payload
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

HERE = Path(__file__).resolve().parent
HUB = [sys.executable, "-m", "hub"]
STARTUP_TIMEOUT = 180.0
"""Seconds a hub process may take to start on a busy machine."""
TICK = 0.05
"""Seconds between two rounds of the pacer: each round publishes the nodes whose slot has come."""


# --- the paced fleet (a process of its own) ---------------------------------------------------------------------
async def publish_paced(broker: str, nodes: int, interval: float, duration: float, connections: int, stem: str) -> dict:
    """Each node once per ``interval`` (slots spread evenly), for ``duration`` s; waits for every PUBACK."""
    from gmqtt import Client
    from gmqtt.mqtt.constants import MQTTv311

    parts = urlsplit(broker)
    macs = node_macs(nodes, stem=stem)
    clients = []
    for index in range(connections):
        storage = _WindowStorage()
        client = Client(f"fleet-{uuid.uuid4().hex[:8]}-{index}", persistent_storage=storage)
        if parts.username:
            client.set_auth_credentials(parts.username, parts.password)
        await client.connect(parts.hostname or "127.0.0.1", parts.port or 1883, version=MQTTv311, keepalive=60)
        protocol = client._connection._protocol
        protocol._transport = _CorkedTransport(protocol._transport)
        clients.append((client, storage))
    window = 500
    started = time.monotonic()
    published = 0
    longest_round = 0.0
    seqs = [0] * nodes
    slot = interval / nodes
    position = 0  # the next node to publish, over all rounds (node = position % nodes)
    while True:
        now = time.monotonic() - started
        if now >= duration:
            break
        due = int(now / slot) + 1
        while position < due:
            node = position % nodes
            client, storage = clients[node % connections]
            while len(storage._messages) >= window:
                storage.freed.clear()
                await storage.freed.wait()
            mac = macs[node]
            client.publish(f"devices/{mac}/data", payload(mac, seqs[node], time.time()), qos=1)
            seqs[node] += 1
            position += 1
            published += 1
        longest_round = max(longest_round, time.monotonic() - started - now)
        await asyncio.sleep(TICK)
    for _client, storage in clients:
        while storage._messages:
            storage.freed.clear()
            await storage.freed.wait()
    acked = sum(storage.acked for _client, storage in clients)
    for client, _storage in clients:
        await client.disconnect()
    return {
        "published": published,
        "sent": acked,
        "seconds": round(time.monotonic() - started, 1),
        "longest_round_s": round(longest_round, 3),
    }


# --- the hub processes --------------------------------------------------------------------------------------------
class HubProcess:
    """One ``hub run --role …`` with its log; its RSS read from /proc."""

    def __init__(self, role: str, config: Path, log: Path) -> None:
        self.role, self.log = role, log
        env = {**os.environ, "HUB_LOAD_PLUGINS": "esp32_node"}
        with open(log, "w") as handle:
            self.process = subprocess.Popen(
                [*HUB, "run", "--role", role, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=handle, env=env
            )
        self.peak_rss = 0

    async def running(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while "running with plugins" not in self.log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.role} did not start:\n{self.log.read_text()[-3000:]}")
            await asyncio.sleep(0.2)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def sample(self) -> float:
        rss = self.rss_mb()
        self.peak_rss = max(self.peak_rss, rss)
        return rss

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


def hub_cli(config: Path, *arguments: str, stdin: str = "") -> str:
    done = subprocess.run(
        [*HUB, *arguments, "-c", str(config)], input=stdin, capture_output=True, text=True, timeout=STARTUP_TIMEOUT
    )
    if done.returncode != 0:
        raise RuntimeError(f"hub {' '.join(arguments)} failed: {done.stderr[-2000:]}")
    return done.stdout.strip()


def ages(now: float, seen: list[float | None]) -> dict[str, Any]:
    """Median, p99 and max of ``now - last_seen`` (None: never seen), and how many are None."""
    values = sorted(now - s for s in seen if s is not None)
    if not values:
        return {"never": len(seen)}
    pick = lambda q: round(values[min(len(values) - 1, int(q * len(values)))], 2)  # noqa: E731
    return {"median_s": pick(0.5), "p99_s": pick(0.99), "max_s": round(values[-1], 2), "never": len(seen) - len(values)}


async def ingest_lag(engine: Any) -> float | None:
    """Seconds between now and the newest stored reading's own timestamp (set by the fleet when it published)."""
    async with engine.connect() as conn:
        newest = (await conn.execute(text("SELECT max(ts) FROM telemetry"))).scalar_one()
    return round(time.time() - newest, 2) if newest is not None else None


async def queue_depth(url: str, name: str) -> int:
    import aio_pika

    connection = await aio_pika.connect(url)
    try:
        queue = await (await connection.channel()).declare_queue(name, passive=True)
        return queue.declaration_result.message_count or 0
    finally:
        await connection.close()


async def database_state(engine: Any, interval: float) -> dict[str, Any]:
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT status, last_seen FROM nodes"))).all()
    now = time.time()
    return {
        "nodes": len(rows),
        "online": sum(1 for status, _ in rows if status == "online"),
        "last_seen_age": ages(now, [seen for _, seen in rows]),
        "older_than_2_intervals": sum(1 for _, seen in rows if seen is None or now - seen > 2 * interval),
    }


async def api_state(url: str, token: str, interval: float) -> dict[str, Any]:
    """The fleet as the API instance serves it, every page."""
    headers = {"Authorization": f"Bearer {token}"}
    seen: list[float | None] = []
    counts: dict[str, int] = {}
    cursor = None
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        while True:
            params = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
            async with session.get(f"{url}/api/nodes", params=params, headers=headers) as response:
                response.raise_for_status()
                page = await response.json()
            counts = page["counts"]
            seen.extend(node.get("last_seen") for node in page["nodes"])
            cursor = page["next"]
            if not cursor:
                break
    now = time.time()
    return {
        "nodes": len(seen),
        "counts": counts,
        "last_seen_age": ages(now, seen),
        "older_than_2_intervals": sum(1 for s in seen if s is None or now - s > 2 * interval),
    }


def config_for(args: Any, workdir: Path, role: str, prefix: str, stem: str, port: int) -> Path:
    unused = f"{prefix}/unused"
    queues = {
        "telemetry": {"bindings": [f"devices/{mac}/data" for mac in node_macs(args.nodes, stem=stem)]},
        "status": {"bindings": [f"{unused}/status"]},
        "acks": {"bindings": [f"{unused}/ack"]},
    }
    config = {
        "hub": {
            "name": f"fleet-{role}",
            "data_dir": str(workdir / "data"),
            "log_level": "info",
            "limits": {"max_nodes": max(20_000, 2 * args.nodes), "new_nodes_per_minute": max(20_000, 2 * args.nodes)},
        },
        "storage": {"db_url": args.db},
        "rabbitmq": {"url": args.rabbitmq, "prefix": prefix, "prefetch": args.prefetch, "queues": queues},
        "http": {"host": "127.0.0.1", "port": port},
    }
    path = workdir / f"{role}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def run(args: Any) -> dict[str, Any]:
    from hub.plugins.rabbitmq.topology import delete
    from hub.testing import free_port

    run_id = uuid.uuid4().hex
    prefix, stem = f"fleet-{run_id[:8]}", ":".join(run_id[i : i + 2] for i in (8, 10, 12)).upper()
    engine = create_async_engine(args.db)
    processes: list[HubProcess] = []
    publisher = None
    try:
        with tempfile.TemporaryDirectory(prefix="hub-fleet-rabbit-") as tmp:
            workdir = Path(tmp)
            port = free_port()
            await clear(engine)
            api_config = config_for(args, workdir, "api", prefix, stem, port)
            hub_cli(api_config, "user", "create", "--username", "bench", "--password-stdin", stdin="bench-password-1\n")
            token = hub_cli(api_config, "token", "create", "--name", "bench")
            for index in range(args.workers):
                config = config_for(args, workdir, "worker", prefix, stem, free_port())
                processes.append(HubProcess("worker", config, workdir / f"worker{index}.log"))
            processes.append(HubProcess("api", api_config, workdir / "api.log"))
            for process in processes:
                await process.running()
            idle = {f"{p.role}{i}": round(p.rss_mb(), 1) for i, p in enumerate(processes)}
            publisher = subprocess.Popen(
                [sys.executable, __file__, "publish", "--broker", args.rabbitmq_mqtt, "--nodes", str(args.nodes)]
                + ["--interval", str(args.interval), "--duration", str(args.duration)]
                + ["--connections", str(args.connections), "--mac-stem", stem],
                stdout=subprocess.PIPE,
                text=True,
            )
            started = time.monotonic()
            registered_after = None
            samples: list[dict[str, float]] = []
            lags: list[float] = []
            while time.monotonic() - started < args.duration - 5:
                await asyncio.sleep(1.0)
                if publisher.poll() is not None:
                    raise RuntimeError(f"the fleet stopped early (exit code {publisher.returncode})")
                if registered_after is None:
                    async with engine.connect() as conn:
                        known = (await conn.execute(text("SELECT count(*) FROM nodes"))).scalar_one()
                    if known >= args.nodes:
                        registered_after = round(time.monotonic() - started, 1)
                if registered_after is not None:  # the steady state: every node known
                    samples.append({f"{p.role}{i}": p.sample() for i, p in enumerate(processes)})
                    if len(samples) % 5 == 0 and (lag := await ingest_lag(engine)) is not None:
                        lags.append(lag)
            in_db = await database_state(engine, args.interval)
            in_db["ingest_lag_s"] = await ingest_lag(engine)
            in_db["queue_depth"] = await queue_depth(args.rabbitmq, f"{prefix}.telemetry")
            in_api = await api_state(f"http://127.0.0.1:{port}", token, args.interval)
            last = {f"{p.role}{i}": round(p.rss_mb(), 1) for i, p in enumerate(processes)}
            out, _ = await asyncio.to_thread(publisher.communicate, timeout=args.duration + 120)
            fleet = json.loads(out.strip().splitlines()[-1])
            stored = await count(engine)
            deadline = time.monotonic() + 120
            while stored < fleet["sent"] and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                stored = await count(engine)
            for process in processes:
                process.stop()
            processes = []
            distinct = await count(engine, distinct=True)
    finally:
        if publisher is not None and publisher.poll() is None:
            publisher.kill()
        for process in processes:
            process.stop()
        connection = None
        try:
            import aio_pika

            connection = await aio_pika.connect(args.rabbitmq)
            await delete(connection, {"prefix": prefix})
        finally:
            if connection is not None:
                await connection.close()
        await engine.dispose()
    return {
        "transport": "rabbitmq",
        "nodes": args.nodes,
        "interval_s": args.interval,
        "duration_s": args.duration,
        "workers": args.workers,
        "offered_msgs_per_s": round(args.nodes / args.interval),
        "all_registered_after_s": registered_after,
        "rss_mb": {
            "idle": idle,
            "steady_peak": {name: round(max(s[name] for s in samples), 1) for name in last} if samples else None,
            "last": last,
        },
        "ingest_lag_s": {"steady_max": max(lags) if lags else None, "steady_last": lags[-1] if lags else None},
        "state_in_database": in_db,
        "state_in_api": in_api,
        "fleet": fleet,
        "stored": distinct,
        "lost": max(fleet["sent"] - distinct, 0),
        "duplicates": stored - distinct,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    pub = sub.add_parser("publish", help="(internal) the paced fleet")
    for target in (parser, pub):
        target.add_argument("--nodes", type=int, default=10_000)
        target.add_argument("--interval", type=float, default=5.0, help="s between two messages of one node")
        target.add_argument("--duration", type=float, default=120.0, help="s the fleet publishes")
        target.add_argument("--connections", type=int, default=20, help="MQTT connections the nodes share")
    pub.add_argument("--broker", required=True)
    pub.add_argument("--mac-stem", required=True, help="the nodes' MACs: this and their index")
    parser.add_argument("--db", help="PostgreSQL URL (postgresql+asyncpg://…); its hub tables are emptied")
    parser.add_argument("--rabbitmq", default="amqp://guest:guest@127.0.0.1:5672/", help="AMQP URL")
    parser.add_argument("--rabbitmq-mqtt", default="mqtt://127.0.0.1:1884", help="RabbitMQ's MQTT plugin")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--prefetch", type=int, default=5000)
    args = parser.parse_args()
    if args.command == "publish":
        result = asyncio.run(
            publish_paced(args.broker, args.nodes, args.interval, args.duration, args.connections, args.mac_stem)
        )
    else:
        if not args.db:
            parser.error("--db is required")
        result = asyncio.run(run(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
