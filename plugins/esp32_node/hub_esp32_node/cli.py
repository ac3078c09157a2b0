"""``hub simulate``: run simulated ESP32 nodes against any MQTT broker, e.g. to load-test a hub."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from collections.abc import Callable

from gmqtt.mqtt.constants import MQTTv50, MQTTv311

from hub.simulator import BrokerAddress, Fleet

PROGRESS_EVERY = 10.0
PROBE_TIMEOUT = 5.0
PROTOCOLS = {"3.1.1": MQTTv311, "5": MQTTv50}


def _positive(kind: type[int | float]) -> Callable[[str], int | float]:
    """An argparse ``type`` accepting only numbers > 0."""

    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``hub simulate``."""
    parser.add_argument(
        "--broker",
        default="mqtt://127.0.0.1:1883",
        metavar="URL",
        help="mqtt://[user:pass@]host[:port] or mqtts://… (default: %(default)s)",
    )
    parser.add_argument("--nodes", type=_positive(int), default=10, metavar="N", help="how many nodes (default: 10)")
    parser.add_argument(
        "--interval",
        type=_positive(float),
        default=5.0,
        metavar="S",
        help="seconds between a node's reports, ±10%% jitter (default: 5)",
    )
    parser.add_argument(
        "--duration",
        type=_positive(float),
        default=None,
        metavar="S",
        help="stop after S seconds (default: run until Ctrl-C)",
    )
    parser.add_argument("--seed", type=int, default=0, help="same seed, same MACs (default: 0)")
    parser.add_argument("--qos", type=int, choices=(0, 1), default=1, help="telemetry QoS (default: 1)")
    parser.add_argument(
        "--mqtt-version",
        choices=tuple(PROTOCOLS),
        default="3.1.1",
        help="protocol the nodes speak (default: 3.1.1, like most ESP32 firmware)",
    )


async def simulate(args: argparse.Namespace) -> int:
    """Run the fleet, print progress every 10 s and a summary; Ctrl-C (or SIGTERM) stops it gracefully."""
    try:
        broker = BrokerAddress.from_url(args.broker)
    except ValueError as err:
        print(f"hub simulate: {err}", file=sys.stderr)
        return 2
    where = f"{broker.host}:{broker.port}"
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(broker.host, broker.port), PROBE_TIMEOUT)
        writer.close()
    except (OSError, TimeoutError) as err:
        print(f"hub simulate: cannot reach the MQTT broker at {where}: {err or 'timed out'}", file=sys.stderr)
        return 1
    fleet = Fleet(
        args.broker,
        args.nodes,
        interval=args.interval,
        seed=args.seed,
        qos=args.qos,
        protocol=PROTOCOLS[args.mqtt_version],
    )
    print(
        f"Simulating {args.nodes} ESP32 node(s) against {where}: one report every {args.interval:g} s each, "
        f"QoS {args.qos}, seed {args.seed}. Ctrl-C stops.",
        flush=True,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, fleet.stop)
    started = time.monotonic()
    runner = asyncio.create_task(fleet.run(args.duration))
    reported = 0
    try:
        while True:
            done, _ = await asyncio.wait({runner}, timeout=PROGRESS_EVERY)
            if done:
                break
            sent = fleet.stats.sent
            print(
                f"[{time.monotonic() - started:6.0f} s] {fleet.connected()}/{args.nodes} nodes connected, "
                f"{sent - reported} messages in the last {PROGRESS_EVERY:g} s, {sent} in total",
                flush=True,
            )
            reported = sent
        await runner
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    elapsed = time.monotonic() - started
    stats = fleet.stats
    print(
        f"Stopped after {elapsed:.1f} s: {stats.sent} messages sent ({stats.sent / max(elapsed, 1e-9):.1f}/s) "
        f"by {args.nodes} node(s); {stats.skipped} skipped while disconnected, "
        f"{stats.connect_failures} failed connects, {stats.throttled} flow-control waits.",
        flush=True,
    )
    return 0
