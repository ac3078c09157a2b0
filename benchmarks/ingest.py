"""End-to-end ingest benchmark: QoS 1 telemetry through the hub's real path into the database.

    python benchmarks/ingest.py --db postgresql+asyncpg://postgres@127.0.0.1/test --nodes 100 --messages 200000

1. Without ``--broker`` it starts a private Mosquitto tuned like ``deploy/mosquitto.conf`` on a free port.
2. Baseline: a bare gmqtt subscriber (QoS 1, MQTT 5) that only counts, fed by the load generator
   (``loadgen.py``) in a separate process: the limit of broker + client on this machine.
3. Hub: the real hub in this process (mqtt + storage + presence built-ins, the esp32_node plugin),
   its garbage collector tuned as ``hub run`` tunes it (``--default-gc``: not), with the same load;
   measured from the publisher's start until the last row is committed.  Then the database is
   counted: ``stored`` rows, ``lost`` = acknowledged-by-broker minus stored, ``duplicates`` = rows
   beyond one per (node, seq).

Prints one JSON line with sent, stored, lost, duplicates, msgs_per_s, baseline_msgs_per_s, ratio, and the
CPU time this process spent per message in each phase (``cpu_us_per_msg``, ``baseline_cpu_us_per_msg``):
on a shared machine the rates follow the load, the CPU per message much less; and, over the hub phase, the
hub's longest event-loop lag (``loop_lag_max_s``, wall clock: on a shared machine it includes time the process
was not scheduled) and the most CPU its loop thread used in one 50 ms sample (``loop_busy_max_s``); the
batches written in the phase (``batches``) and their mean write time, from the sink's call to its commit
(``batch_ms_mean``): the hub acknowledges a message only once its batch committed, so the in-flight window
over the write time bounds the rate from above.
``pg_cpu_us_per_msg``: the CPU the PostgreSQL backends serving ``--db`` spent per message in the hub phase
(the hub's share of the server's work: COPY, indexes, the rollup fold, autovacuum), when the server runs on
this machine; null otherwise or on SQLite (see ``pg_cpu.py``).  It includes one last fold after the phase,
so rows not yet folded when it ends are paid for too (``--rollup-interval`` changes how often the hub folds).
``pg_ingest_cpu_us_per_msg`` is the same without that last fold: what the server spent while the rate was
measured (a fleet's epoch of rollup deltas is sealed and folded after a short phase, outside its rate).
``broker_cpu_us_per_msg`` and ``loadgen_cpu_us_per_msg`` (each phase; ``baseline_`` for the bare subscriber's):
the CPU the private Mosquitto (null with ``--broker``) and the load generator spent per message.  Every process
shares this machine's cores, so a rate falls when any of them needs more, the hub or not.
The database named by ``--db`` gets the hub's tables; before the hub starts the benchmark empties them
(``TRUNCATE`` on PostgreSQL: a ``DELETE`` leaves millions of dead rows that slow the count below).

``--registered`` sends one message per node first and measures after it is stored: the steady state
of a known fleet, without the one-off cost of registering every node and its entities.  The heap is
frozen after that, as ``hub run`` freezes a fleet it restored at start (otherwise the hub's refreeze of
the grown fleet, a one-off, falls inside the measured phase).

``--profile FILE`` samples the hub phase (publisher start to last commit) with py-spy
(``--native --gil``, 200 Hz) for ``profile_shares.py``; it costs the hub CPU, so the rate of a
profiled run is not a figure.

Every wait is bounded (``--timeout``, shared with the RabbitMQ path's options).  The final count runs under a statement timeout after an
``ANALYZE`` (an unanalysed table made PostgreSQL pick a spilling hash aggregate that took minutes); a count
that times out is reported as ``"count": "timeout"`` with ``stored``/``lost``/``duplicates`` null, never
waited for.

``--transport rabbitmq --workers 1,2`` measures the RabbitMQ path instead (RabbitMQ's MQTT plugin -> N
``hub run --role worker`` processes -> the database, against a bare aio-pika consumer): see
``ingest_rabbitmq.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from gmqtt import Client
from gmqtt.mqtt.constants import MQTTv50
from pg_cpu import PgCpuMeter
from proc_cpu import ProcessCpu
from profiling import start_profiler, stop_profiler
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import create_async_engine

from hub import Hub
from hub.core.hub import freeze_startup_heap
from hub.testing import PrivateMosquitto, make_hub

HERE = Path(__file__).resolve().parent

COUNT_TIMEOUT = 60.0
"""Seconds the final count may take on the server (statement timeout) before it is reported as a timeout."""
PG_SAMPLE_INTERVAL = 0.5
"""Seconds between samples of the PostgreSQL backends' CPU (``pg_cpu_us_per_msg``; see pg_cpu.py)."""
IDLE_TIMEOUT = 10.0
"""Seconds without a new stored row after which the hub phase ends: what has not arrived by then is lost."""
TABLES = (
    "telemetry",
    "status_history",
    "entities",
    "nodes",
    "telemetry_dedupe",
    "rollup_pending",
    "rollup_1m",
    "rollup_1h",
)
"""Emptied before each hub phase (those present), so every run starts from the same state."""


def start_publisher(broker: str, nodes: int, messages: int) -> subprocess.Popen[str]:
    """The load generator in its own process (so it does not share this process's core)."""
    return subprocess.Popen(
        [
            sys.executable,
            str(HERE / "loadgen.py"),
            "--broker",
            broker,
            "--nodes",
            str(nodes),
            "--messages",
            str(messages),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )


def publisher_result(process: subprocess.Popen[str], timeout: float) -> dict:
    """The load generator's JSON line; it is killed if it has not finished within ``timeout`` s."""
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise RuntimeError(f"load generator did not finish within {timeout:.0f} s") from None
    if process.returncode != 0:
        raise RuntimeError(f"load generator failed with exit code {process.returncode}")
    return json.loads(out.strip().splitlines()[-1])


async def baseline(broker: str, nodes: int, messages: int, timeout: float, broker_pid: int | None = None) -> dict:
    """Messages per second a bare gmqtt subscriber receives from the same load."""
    parts = urlsplit(broker)
    received = 0
    done = asyncio.Event()
    last = 0.0

    def on_message(client, topic, payload, qos, properties):
        nonlocal received, last
        received += 1
        last = time.perf_counter()
        if received >= messages:
            done.set()
        return 0

    client = Client(f"bench-baseline-{uuid.uuid4().hex[:8]}")
    client.on_message = on_message
    async with asyncio.timeout(10):
        await client.connect(parts.hostname, parts.port, version=MQTTv50)
    client.subscribe("devices/+/data", qos=1)
    await asyncio.sleep(0.5)
    started, cpu_started = time.perf_counter(), time.process_time()
    broker_cpu = ProcessCpu(broker_pid)
    publisher = start_publisher(broker, nodes, messages)
    result_task = asyncio.create_task(asyncio.to_thread(publisher_result, publisher, timeout))
    try:
        # Done when every message arrived, or IDLE_TIMEOUT after the publisher finished (the rest is lost).
        while not done.is_set():
            await asyncio.sleep(0.05)
            if result_task.done() and time.perf_counter() - max(last, started) > IDLE_TIMEOUT:
                break
        cpu = time.process_time() - cpu_started
        broker_seconds = broker_cpu.spent()
    finally:
        result = await result_task
        async with asyncio.timeout(10):
            await client.disconnect()
    seconds = last - started
    return {
        "received": received,
        "sent": result["sent"],
        "msgs_per_s": round(received / seconds),
        "cpu_us_per_msg": _per_message(cpu, received),
        "broker_cpu_us_per_msg": _per_message(broker_seconds, received),
        "loadgen_cpu_us_per_msg": _per_message(result["cpu_seconds"], result["sent"]),
    }


def _per_message(seconds: float | None, messages: int) -> float | None:
    """Microseconds a message, to one decimal; None when either is unknown."""
    return round(1e6 * seconds / messages, 1) if seconds is not None and messages else None


def build_hub(broker: str, db_url: str, data_dir: Path, nodes: int, rollup_interval: float | None = None) -> Hub:
    """The hub under test; its node limits admit the whole fleet at once (an operator onboarding it)."""
    from hub_esp32_node import plugin as esp32_node

    limits = {"max_nodes": max(20_000, nodes), "new_nodes_per_minute": max(1_000, nodes)}
    raw = {
        "hub": {"name": "bench", "data_dir": str(data_dir), "log_level": "warning", "limits": limits},
        "mqtt": {"broker": broker, "client_id": f"bench-hub-{uuid.uuid4().hex[:8]}"},
        "storage": {"db_url": db_url, **({"rollup_interval": rollup_interval} if rollup_interval else {})},
    }
    builtins = ("hub.plugins.storage", "hub.plugins.mqtt", "hub.plugins.presence")
    return make_hub(raw, builtins=builtins, plugins=[(esp32_node, "esp32_node")])


async def count_rows(db_url: str) -> tuple[int, int] | None:
    """(rows, distinct (node, dedupe)) in the telemetry table; None when the count hit its timeout.

    PostgreSQL: ``ANALYZE`` first (a never analysed table gets a spilling parallel hash aggregate) and a
    server-side statement timeout, so a slow count neither hangs the benchmark nor leaves a backend
    burning a core after the client gave up.
    """
    engine = create_async_engine(db_url)
    postgres = engine.dialect.name == "postgresql"
    try:
        async with asyncio.timeout(COUNT_TIMEOUT * 3), engine.connect() as conn:
            if postgres:
                await conn.execute(text(f"SET statement_timeout = {int(COUNT_TIMEOUT * 1000)}"))
                await conn.execute(text("ANALYZE telemetry"))
            rows = (await conn.execute(text("SELECT count(*) FROM telemetry"))).scalar_one()
            distinct = (
                await conn.execute(text("SELECT count(*) FROM (SELECT DISTINCT node_ref, dedupe FROM telemetry) d"))
            ).scalar_one()
    except (OperationalError, DBAPIError) as err:
        if postgres and "statement timeout" in str(err):
            return None
        raise
    except TimeoutError:
        return None
    finally:
        await engine.dispose()
    return rows, distinct


async def clear_rows(db_url: str) -> None:
    """Empty the hub's tables before the hub starts (nothing to do on a fresh database without them)."""
    engine = create_async_engine(db_url)
    try:
        async with asyncio.timeout(COUNT_TIMEOUT), engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                await conn.execute(text("SET LOCAL lock_timeout = '10s'"))
                present = (
                    (
                        await conn.execute(
                            text(
                                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename = ANY(:t)"
                            ),
                            {"t": list(TABLES)},
                        )
                    )
                    .scalars()
                    .all()
                )
                if present:
                    await conn.execute(text(f"TRUNCATE {', '.join(present)} RESTART IDENTITY CASCADE"))
            else:
                for table in TABLES:
                    try:
                        async with conn.begin_nested():
                            await conn.execute(text(f"DELETE FROM {table}"))
                    except (OperationalError, ProgrammingError):
                        pass  # no such table yet: the hub creates it
    finally:
        await engine.dispose()


async def through_hub(
    broker: str,
    db_url: str,
    nodes: int,
    messages: int,
    data_dir: Path,
    timeout: float,
    profile: Path | None = None,
    tune_gc: bool = True,
    registered: bool = False,
    rollup_interval: float | None = None,
    broker_pid: int | None = None,
) -> dict:
    """Messages per second from the publisher's start to the last committed row (profiled in between).

    ``registered``: one message per node first, not measured, so the measured phase is a known fleet's
    steady state rather than its first contact (registering nodes and entities costs more per message).
    """
    await clear_rows(db_url)
    hub = build_hub(broker, db_url, data_dir, nodes, rollup_interval)
    async with asyncio.timeout(60):
        await hub.async_start()
    if tune_gc and not registered:
        freeze_startup_heap(hub)  # as `hub run` does
    await asyncio.sleep(0.5)
    warm = 0
    if registered:
        warm = (await asyncio.to_thread(publisher_result, start_publisher(broker, nodes, nodes), timeout))["sent"]
        async with asyncio.timeout(timeout):
            while hub.metrics.value("stored_rows") < warm:
                await asyncio.sleep(0.05)
        if tune_gc:  # as `hub run` does when it starts with this fleet in its database (restored, then frozen)
            freeze_startup_heap(hub)
        await asyncio.sleep(0.5)
    stored_before = hub.metrics.value("stored_rows")
    batches_before = _batch_totals(hub)
    hub.loop_lag.max_lag = hub.loop_lag.max_busy = 0.0  # the measured phase's own, not the start's or warm-up's
    pg_cpu = PgCpuMeter(db_url)
    await pg_cpu.start()
    profiler = start_profiler(profile, os.getpid())
    started, cpu_started = time.perf_counter(), time.process_time()
    broker_cpu = ProcessCpu(broker_pid)
    publisher = start_publisher(broker, nodes, messages)
    result_task = asyncio.create_task(asyncio.to_thread(publisher_result, publisher, timeout))
    last_progress, last_stored, finished = time.perf_counter(), 0.0, started
    last_sample = started
    while True:
        await asyncio.sleep(0.02)
        stored = hub.metrics.value("stored_rows") - stored_before
        now = time.perf_counter()
        if now - last_sample >= PG_SAMPLE_INTERVAL:
            last_sample = now
            await pg_cpu.sample()
        if stored != last_stored:
            last_stored, last_progress, finished = stored, now, now
        if result_task.done() and stored >= result_task.result()["sent"]:
            break
        if now - last_progress > IDLE_TIMEOUT:
            break  # nothing more arrives: the rest is lost
    cpu = time.process_time() - cpu_started
    broker_seconds = broker_cpu.spent()
    batches, batch_seconds = (after - before for after, before in zip(_batch_totals(hub), batches_before))
    pg_ingest_us = _per_message(await pg_cpu.spent(), int(last_stored))
    if pg_cpu.active:  # the rows stored but not folded yet are part of the server's cost per message
        await hub.services.call("storage", "fold", {"timeout": 600})
    pg_seconds = await pg_cpu.stop()
    pg_us = _per_message(pg_seconds, int(last_stored))
    await asyncio.to_thread(stop_profiler, profiler)
    publisher_figures = await result_task
    sent = publisher_figures["sent"]
    async with asyncio.timeout(120):
        await hub.async_stop()
    counted = await count_rows(db_url)
    seconds = finished - started
    figures = {
        "seconds": round(seconds, 3),
        "cpu_us_per_msg": _per_message(cpu, int(last_stored)),
        "pg_cpu_us_per_msg": pg_us,
        "pg_ingest_cpu_us_per_msg": pg_ingest_us,
        "broker_cpu_us_per_msg": _per_message(broker_seconds, int(last_stored)),
        "loadgen_cpu_us_per_msg": _per_message(publisher_figures["cpu_seconds"], sent),
        "loop_lag_max_s": round(hub.loop_lag.max_lag, 3),
        "loop_busy_max_s": round(hub.loop_lag.max_busy, 3),
        "batches": int(batches),
        "batch_ms_mean": round(1e3 * batch_seconds / batches, 1) if batches else None,
    }
    if counted is None:
        return {
            "sent": sent,
            "count": "timeout",
            "stored": None,
            "lost": None,
            "duplicates": None,
            "msgs_per_s": round(last_stored / seconds) if seconds else 0,
            **figures,
        }
    rows, distinct = counted
    distinct -= warm
    rows -= warm
    return {
        "sent": sent,
        "stored": distinct,
        "lost": max(sent - distinct, 0),
        "duplicates": rows - distinct,
        "msgs_per_s": round(distinct / seconds) if seconds else 0,
        **figures,
    }


def _batch_totals(hub: Hub) -> tuple[float, float]:
    """How many batches the hub has written and the seconds they took (``hub_batch_seconds``)."""
    sample = hub.metrics.registry.get_sample_value
    return sample("hub_batch_seconds_count") or 0.0, sample("hub_batch_seconds_sum") or 0.0


async def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        workdir = Path(tmp)
        broker = PrivateMosquitto(workdir / "mosquitto") if args.broker is None else None
        if broker is not None:
            broker.start()
        url = args.broker or broker.url  # type: ignore[union-attr]
        try:
            broker_pid = broker.process.pid if broker is not None and broker.process is not None else None
            base = None
            if not args.skip_baseline:
                base = await baseline(url, args.nodes, args.messages, args.timeout, broker_pid)
            hub = await through_hub(
                url,
                args.db,
                args.nodes,
                args.messages,
                workdir / "hub",
                args.timeout,
                profile=args.profile,
                tune_gc=not args.default_gc,
                registered=args.registered,
                rollup_interval=args.rollup_interval,
                broker_pid=broker_pid,
            )
        finally:
            if broker is not None:
                broker.stop()
    baseline_rate = base["msgs_per_s"] if base else None
    return {
        "db": urlsplit(args.db).scheme,
        "nodes": args.nodes,
        "messages": args.messages,
        **hub,
        "baseline_msgs_per_s": baseline_rate,
        "ratio": round(hub["msgs_per_s"] / baseline_rate, 3) if baseline_rate else None,
        **{f"baseline_{key}": base[key] if base else None for key in _BASELINE_CPU},
    }


_BASELINE_CPU = ("cpu_us_per_msg", "broker_cpu_us_per_msg", "loadgen_cpu_us_per_msg")
"""The baseline phase's CPU figures, reported with a ``baseline_`` prefix."""


def main() -> None:
    parser = argparse.ArgumentParser(description="End-to-end ingest benchmark (see the module docstring).")
    parser.add_argument("--broker", help="MQTT broker URL (default: start a private Mosquitto)")
    parser.add_argument("--db", required=True, help="SQLAlchemy URL, e.g. sqlite+aiosqlite:////tmp/bench.db")
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument(
        "--rollup-interval", type=float, help="storage: rollup_interval for the hub (default: the hub's default)"
    )
    parser.add_argument(
        "--registered", action="store_true", help="register the fleet first (one message per node, not measured)"
    )
    parser.add_argument(
        "--default-gc",
        action="store_true",
        help="leave the collector as it is (no freeze_startup_heap, as hub run does)",
    )
    parser.add_argument(
        "--profile", type=Path, help="py-spy the hub phase into this file (raw stacks; see profile_shares.py)"
    )
    parser.add_argument("--transport", choices=("mqtt", "rabbitmq"), default="mqtt")
    import ingest_rabbitmq  # the RabbitMQ path's options and run, in their own module

    ingest_rabbitmq.add_arguments(parser)
    args = parser.parse_args()
    runner = ingest_rabbitmq.run if args.transport == "rabbitmq" else run
    print(json.dumps(asyncio.run(runner(args))), flush=True)


if __name__ == "__main__":
    main()
