"""Subscribing and unsubscribing many exact topics on the message router: what a large ESPHome fleet costs.

    python benchmarks/router_subscriptions.py [--subscriptions 50000]

The ESPHome plugin subscribes one state and one availability topic per entity, so a fleet of 10,000 nodes
with a few entities each holds tens of thousands of router subscriptions, and a node removed or
re-announced drops its own.  Prints one JSON line: seconds to subscribe them all, to route one message on
each, and to unsubscribe them all.  Figures, never assertions: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import time

from hub.core.messages import MessageRouter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=50_000)
    args = parser.parse_args()
    router = MessageRouter()
    delivered = 0

    def handler(topic: str, payload: bytes, retained: bool) -> None:
        nonlocal delivered
        delivered += 1

    topics = [f"esphome/node-{i // 5}/sensor/s{i % 5}/state" for i in range(args.subscriptions)]
    started = time.perf_counter()
    unsubscribes = [router.subscribe(topic, handler) for topic in topics]
    subscribed = time.perf_counter()
    for topic in topics:
        router.dispatch(topic, b"21.5")
    routed = time.perf_counter()
    for unsubscribe in unsubscribes:
        unsubscribe()
    done = time.perf_counter()
    print(
        json.dumps(
            {
                "subscriptions": args.subscriptions,
                "subscribe_s": round(subscribed - started, 3),
                "route_each_once_s": round(routed - subscribed, 3),
                "unsubscribe_s": round(done - routed, 3),
                "delivered": delivered,
                "left_subscribed": len(router.filters()),
            }
        )
    )


if __name__ == "__main__":
    main()
