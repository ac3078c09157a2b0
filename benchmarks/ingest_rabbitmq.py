"""The RabbitMQ path of ``ingest.py``: MQTT QoS 1 into RabbitMQ's MQTT plugin -> N hub workers -> PostgreSQL.

    python benchmarks/ingest.py --transport rabbitmq --workers 1,2 \\
        --db postgresql+asyncpg://postgres@127.0.0.1/test --nodes 1000 --messages 100000

Kept out of ``ingest.py`` (which only parses the options and calls :func:`run`) so the
two paths change independently.  Per run:

1. Baseline: a bare aio-pika consumer with manual acks (``multiple`` every 1,000
   messages, as the hub acknowledges a batch at a time) on a quorum queue declared with
   the hub's arguments and bindings, fed by ``loadgen.py`` (MQTT 3.1.1, the plugin's
   protocol) in its own process: the limit of broker + client library on this machine.
2. For each worker count: that many ``hub run --role worker`` processes (storage +
   presence + rabbitmq + esp32_node), each its own process as in production, consume
   the hub's queues; the same load is published; the rate is counted from the
   publisher's start until the database holds every acknowledged message.  ``lost`` =
   acknowledged by the broker minus stored; ``duplicates`` = rows beyond one per
   (node, dedupe).

Queues use a prefix of their own and are bound to the load generator's MACs only, and the
MACs are made for the run (a random three-byte stem and the node's index), so on a shared
RabbitMQ nothing else gets in and no other run's queues take this run's messages; the
queues are deleted at the end.  Every wait is
bounded (``--timeout``); a count that does not finish in time is reported as such.
"""

from __future__ import annotations

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

import aio_pika
import yaml
from loadgen import node_macs
from profiling import start_profiler, stop_profiler
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from hub.plugins.rabbitmq.config import CONFIG_SCHEMA, queue_arguments, routing_key
from hub.plugins.rabbitmq.topology import delete

HERE = Path(__file__).resolve().parent
HUB = [sys.executable, "-m", "hub"]
COUNT_INTERVAL = 0.1
"""Seconds between row counts while a run is waiting for the database to hold everything."""


def add_arguments(parser: Any) -> None:
    """The options of the RabbitMQ path (ingest.py adds them to its own)."""
    parser.add_argument("--workers", default="1,2", help="worker counts to run, comma-separated (default 1,2)")
    parser.add_argument("--rabbitmq", default="amqp://guest:guest@127.0.0.1:5672/", help="AMQP URL")
    parser.add_argument("--rabbitmq-mqtt", default="mqtt://127.0.0.1:1884", help="RabbitMQ's MQTT plugin")
    parser.add_argument("--prefetch", type=int, default=5000, help="per worker and for the baseline consumer")
    parser.add_argument("--timeout", type=float, default=600.0, help="s any one phase may take")
    parser.add_argument(
        "--flush-interval", type=float, help="the workers' storage: flush_interval (default: storage's default)"
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc): what it cost, however busy the machine is."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_publisher(broker: str, nodes: int, messages: int, stem: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HERE / "loadgen.py"), "--broker", broker, "--nodes", str(nodes)]
        + ["--messages", str(messages), "--protocol", "3.1.1", "--mac-stem", stem],
        stdout=subprocess.PIPE,
        text=True,
    )


def publisher_result(process: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    out, _ = process.communicate(timeout=timeout)
    if process.returncode != 0:
        raise RuntimeError(f"load generator failed with exit code {process.returncode}")
    return json.loads(out.strip().splitlines()[-1])


def rabbit_section(args: Any, prefix: str, stem: str) -> dict[str, Any]:
    """The workers' ``rabbitmq:`` section: telemetry bound to the load's MACs, the rest to nothing in use."""
    macs = node_macs(args.nodes, stem=stem)
    unused = f"{prefix}/unused"
    return {
        "url": args.rabbitmq,
        "prefix": prefix,
        "prefetch": args.prefetch,
        "queues": {
            "telemetry": {"bindings": [f"devices/{mac}/data" for mac in macs]},
            "status": {"bindings": [f"{unused}/status"]},
            "acks": {"bindings": [f"{unused}/ack"]},
        },
    }


async def baseline(args: Any, prefix: str, stem: str) -> dict[str, Any]:
    """Messages per second a bare aio-pika consumer with manual acks takes from the same load."""
    section = CONFIG_SCHEMA(rabbit_section(args, prefix, stem))
    arguments = {k: v for k, v in queue_arguments(section, "telemetry").items() if "dead-letter" not in k}
    connection = await aio_pika.connect(args.rabbitmq)
    received = 0
    last = 0.0
    done = asyncio.Event()
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=args.prefetch)
        queue = await channel.declare_queue(f"{prefix}.baseline", durable=True, arguments=arguments)
        exchange = await channel.get_exchange("amq.topic", ensure=False)
        for topic_filter in section["queues"]["telemetry"]["bindings"]:
            await queue.bind(exchange, routing_key(topic_filter))

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal received, last
            received += 1
            last = time.perf_counter()
            if received % 1000 == 0 or received >= args.messages:
                await message.ack(multiple=True)
            if received >= args.messages:
                done.set()

        await queue.consume(on_message, no_ack=False)
        started = time.perf_counter()
        cpu_started = time.process_time()  # this process is the consumer (the publisher is a child)
        publisher = start_publisher(args.rabbitmq_mqtt, args.nodes, args.messages, stem)
        sent = (await asyncio.to_thread(publisher_result, publisher, args.timeout))["sent"]
        try:
            async with asyncio.timeout(args.timeout):
                await done.wait()
        except TimeoutError:
            pass
        cpu = time.process_time() - cpu_started
        await queue.delete(if_unused=False, if_empty=False)
    finally:
        await connection.close()
    seconds = last - started
    return {
        "sent": sent,
        "received": received,
        "msgs_per_s": round(received / seconds) if seconds > 0 else 0,
        "cpu_us_per_msg": round(cpu / received * 1e6, 1) if received else None,
    }


class Workers:
    """N ``hub run --role worker`` processes on one config file."""

    def __init__(self, config: Path, count: int, log_dir: Path) -> None:
        env = {**os.environ, "HUB_LOAD_PLUGINS": "esp32_node"}
        self.logs = [log_dir / f"worker{i}.log" for i in range(count)]
        self.processes = []
        for log in self.logs:
            with open(log, "w") as handle:
                self.processes.append(
                    subprocess.Popen(
                        [*HUB, "run", "--role", "worker", "-c", str(config)],
                        stdout=subprocess.DEVNULL,
                        stderr=handle,
                        env=env,
                    )
                )

    async def running(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for log, process in zip(self.logs, self.processes, strict=True):
            while "running with plugins" not in log.read_text():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker did not start:\n{log.read_text()[-3000:]}")
                await asyncio.sleep(0.1)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


async def count(engine: AsyncEngine, distinct: bool = False) -> int:
    query = (
        "SELECT count(*) FROM (SELECT DISTINCT node_ref, dedupe FROM telemetry) d"
        if distinct
        else "SELECT count(*) FROM telemetry"
    )
    async with engine.connect() as conn:
        await conn.execute(text("SET statement_timeout = '60s'"))
        return int((await conn.execute(text(query))).scalar_one())


async def clear(engine: AsyncEngine, attempts: int = 5) -> None:
    """Empty the hub's tables.  Running workers read them (a worker's registry reload at its connection reads
    nodes, entities and telemetry in one transaction), so a TRUNCATE may deadlock with them: tried again."""
    for attempt in range(attempts):
        try:
            async with engine.begin() as conn:
                exists = (await conn.execute(text("SELECT to_regclass('telemetry') IS NOT NULL"))).scalar_one()
                if exists:
                    await conn.execute(text("SET LOCAL lock_timeout = '10s'"))
                    await conn.execute(text("TRUNCATE telemetry, status_history, entities, nodes CASCADE"))
            return
        except DBAPIError as err:
            if attempt == attempts - 1 or not ("deadlock" in str(err) or "lock timeout" in str(err)):
                raise
            await asyncio.sleep(0.5)


async def through_workers(
    args: Any, prefix: str, stem: str, workers: int, workdir: Path, profile: Path | None = None
) -> dict[str, Any]:
    """One run of the load through ``workers`` worker processes into the database (``profile``: py-spy the first)."""
    config = workdir / f"workers{workers}.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "hub": {"name": f"bench-worker-{workers}", "data_dir": str(workdir / "data"), "log_level": "info"},
                "storage": {
                    "db_url": args.db,
                    **({"flush_interval": args.flush_interval} if args.flush_interval else {}),
                },
                "rabbitmq": rabbit_section(args, prefix, stem),
            }
        )
    )
    engine = create_async_engine(args.db)
    group = profiler = None
    try:
        await clear(engine)
        group = Workers(config, workers, workdir)
        await group.running(args.timeout)
        await clear(engine)  # nodes registered by nobody: every run starts from an empty fleet
        started = time.perf_counter()
        cpu_started = sum(cpu_seconds(p.pid) for p in group.processes)
        profiler = start_profiler(profile, group.processes[0].pid)
        publisher = start_publisher(args.rabbitmq_mqtt, args.nodes, args.messages, stem)
        result = asyncio.create_task(asyncio.to_thread(publisher_result, publisher, args.timeout))
        stored, finished, timed_out = 0, started, False
        deadline = started + args.timeout
        while True:
            await asyncio.sleep(COUNT_INTERVAL)
            now_stored = await count(engine)
            now = time.perf_counter()
            if now_stored != stored:
                stored, finished = now_stored, now
            if result.done() and stored >= result.result()["sent"]:
                break
            if now > deadline:
                timed_out = True
                break
        published = await result
        cpu = sum(cpu_seconds(p.pid) for p in group.processes) - cpu_started
        await asyncio.to_thread(stop_profiler, profiler)
        profiler = None
        group.stop()
        group = None
        rows, distinct = await count(engine), await count(engine, distinct=True)
    finally:
        stop_profiler(profiler)
        if group is not None:
            group.stop()
        await engine.dispose()
    seconds = finished - started
    return {
        "workers": workers,
        "sent": published["sent"],
        "stored": distinct,
        "lost": max(published["sent"] - distinct, 0),
        "duplicates": rows - distinct,
        "msgs_per_s": round(distinct / seconds) if seconds > 0 else 0,
        "cpu_us_per_msg": round(cpu / distinct * 1e6, 1) if distinct else None,
        "publisher_msgs_per_s": published["msgs_per_s"],
        "seconds": round(seconds, 3),
        **({"timed_out": True} if timed_out else {}),
    }


async def run(args: Any) -> dict[str, Any]:
    """Baseline, then each worker count; one JSON-able dict."""
    run_id = uuid.uuid4().hex
    prefix, stem = f"bench-{run_id[:8]}", ":".join(run_id[i : i + 2] for i in (8, 10, 12)).upper()
    counts = [int(n) for n in str(args.workers).split(",") if n.strip()]
    results = []
    try:
        base = None if args.skip_baseline else await baseline(args, prefix, stem)
        with tempfile.TemporaryDirectory(prefix="hub-bench-rabbit-") as tmp:
            for index, workers in enumerate(counts):
                profile = args.profile if index == 0 else None
                results.append(await through_workers(args, prefix, stem, workers, Path(tmp), profile))
    finally:
        connection = await aio_pika.connect(args.rabbitmq)
        try:
            await delete(connection, {"prefix": prefix})
        finally:
            await connection.close()
    rate = base["msgs_per_s"] if base else None
    base_cpu = base["cpu_us_per_msg"] if base else None
    for result in results:
        result["baseline_msgs_per_s"] = rate
        result["ratio"] = round(result["msgs_per_s"] / rate, 3) if rate else None
        # CPU per message, baseline over workers: the ratio a machine of our own would show, whatever the load
        worker_cpu = result["cpu_us_per_msg"]
        result["cpu_ratio"] = round(base_cpu / worker_cpu, 3) if base_cpu and worker_cpu else None
    return {
        "transport": "rabbitmq",
        "db": urlsplit(args.db).scheme,
        "nodes": args.nodes,
        "messages": args.messages,
        "baseline_msgs_per_s": rate,
        "baseline": base,
        "runs": results,
    }
