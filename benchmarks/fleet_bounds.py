"""Whole-fleet reads, WebSocket queues, subscriptions and node floods against one hub: loop stalls and memory.

    python benchmarks/fleet_bounds.py [--nodes 10000] [--entities 5] [--subscriptions 20000] [--macs 100000]
                                      [--phases api,ws,slow,subs,macs,entities]

The hub runs in this process (http and the esp32_node plugin, no storage: the in-memory state is what
is measured) with a ticker task that wakes every millisecond and records how late it woke: the **loop
lag**, the longest time the event loop did not run it.  On a shared machine that includes the time the
process was not scheduled at all, so the ticker also records the CPU time this thread spent between two
wake-ups: the **loop busy** figure, the longest the hub itself held the loop (work, garbage collection),
whatever else runs on the machine.  ``idle`` is both while nothing happens, for comparison.  The clients
run in a child process, so their own JSON parsing never shows as the hub's lag.  Phases:

* ``api``: ``--nodes`` nodes with ``--entities`` readings each.  ``GET /api/nodes`` once (time, bytes),
  once with ``Accept-Encoding: gzip`` (bytes on the wire), then the whole fleet page by page
  (``limit``/``cursor``; a hub without paging answers it in one response); max loop lag of each;
* ``ws``: the same over the WebSocket (``get_nodes``, then every page);
* ``slow``: a WebSocket client sends ``--slow-requests`` (20) ``get_nodes`` and reads nothing; the hub's memory
  before, at its peak while the client is connected, and after it left; whether it was disconnected;
* ``subs``: one client makes ``--subscriptions`` subscriptions (as many as the hub accepts), then closes:
  max loop lag while the hub drops them;
* ``macs``: ``--macs`` telemetry messages, each from a new random MAC, through the router as the MQTT
  transport hands them over (in batches, yielding between): time, memory growth, nodes registered,
  rejections by reason, max loop lag; then ``GET /api/nodes`` (first page) on the result;
* ``entities``: one MAC sending 1,000 messages of 100 new keys each (100,000 would-be entities).

``--limits`` sets ``hub: limits:`` for the last two (default: the defaults).  A hub from before the
limits and paging runs the same phases (its one answer is then the whole fleet).

Prints one JSON line per phase.  Figures, never assertions: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from lag_ticker import LagTicker

RESULT_PREFIX = "RESULT "


# --- measuring ---------------------------------------------------------------------------------
def rss_mb() -> float:
    """This process's resident memory."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


# --- the client process ----------------------------------------------------------------------------
async def client_main(url: str, token: str, phase: str, arg: int) -> dict[str, Any]:
    import aiohttp

    headers = {"Authorization": f"Bearer {token}"}
    result: dict[str, Any] = {}
    async with aiohttp.ClientSession(headers=headers, auto_decompress=False) as http:
        if phase == "api":
            started = time.perf_counter()
            async with http.get(f"{url}/api/nodes", headers={"Accept-Encoding": "identity"}) as response:
                body = await response.read()
            result["get_ms"] = round((time.perf_counter() - started) * 1000)
            first = orjson.loads(body)
            result["get_bytes"] = len(body)
            result["get_nodes"] = len(first["nodes"])
            started = time.perf_counter()
            async with http.get(f"{url}/api/nodes", headers={"Accept-Encoding": "gzip, deflate"}) as response:
                wire = await response.read()
                result["gzip_encoding"] = response.headers.get("Content-Encoding")
            result["gzip_ms"] = round((time.perf_counter() - started) * 1000)
            result["gzip_bytes"] = len(wire)
            await asyncio.sleep(0.2)
            print("MARK fleet", flush=True)
            await asyncio.sleep(0.2)
            started = time.perf_counter()
            total = pages = wire_bytes = 0
            cursor = None
            while True:
                params = {"limit": "1000"} if "next" in first else {}
                if cursor is not None:
                    params["cursor"] = cursor
                async with http.get(f"{url}/api/nodes", params=params, headers={"Accept-Encoding": "gzip"}) as response:
                    raw = await response.read()
                    wire_bytes += len(raw)
                    if response.headers.get("Content-Encoding") == "gzip":
                        import gzip

                        raw = gzip.decompress(raw)
                page = orjson.loads(raw)
                pages += 1
                total += len(page["nodes"])
                cursor = page.get("next")
                if not cursor:
                    break
            result["fleet_ms"] = round((time.perf_counter() - started) * 1000)
            result["fleet_pages"] = pages
            result["fleet_nodes"] = total
            result["fleet_wire_bytes"] = wire_bytes
        elif phase in ("ws", "slow", "subs"):
            ws = await http.ws_connect(f"{url}/api/websocket", max_msg_size=0)
            await ws.receive_json()
            await ws.send_json({"type": "auth", "access_token": token})
            assert (await ws.receive_json())["type"] == "auth_ok"
            if phase == "ws":
                started = time.perf_counter()
                await ws.send_json({"id": 1, "type": "get_nodes"})
                message = await ws.receive()
                result["get_ms"] = round((time.perf_counter() - started) * 1000)
                result["get_bytes"] = len(message.data)
                answer = orjson.loads(message.data)["result"]
                result["get_nodes"] = len(answer["nodes"])
                await asyncio.sleep(0.2)
                print("MARK fleet", flush=True)
                await asyncio.sleep(0.2)
                started = time.perf_counter()
                total = pages = 0
                msg_id, cursor = 2, None
                while True:
                    request: dict[str, Any] = {"id": msg_id, "type": "get_nodes"}
                    if "next" in answer:
                        request["limit"] = 1000
                    if cursor:
                        request["cursor"] = cursor
                    await ws.send_json(request)
                    page = orjson.loads((await ws.receive()).data)["result"]
                    pages += 1
                    total += len(page["nodes"])
                    cursor = page.get("next")
                    msg_id += 1
                    if not cursor:
                        break
                result["fleet_ms"] = round((time.perf_counter() - started) * 1000)
                result["fleet_pages"] = pages
                result["fleet_nodes"] = total
            elif phase == "slow":
                for msg_id in range(1, arg + 1):
                    await ws.send_json({"id": msg_id, "type": "get_nodes"})
                print("MARK sent", flush=True)
                await asyncio.sleep(6)
                result["closed_by_hub"] = ws.closed or ws._reader.exception() is not None  # type: ignore[attr-defined]
            else:  # subs
                accepted = refused = 0
                error = None
                for msg_id in range(1, arg + 1):
                    await ws.send_json({"id": msg_id, "type": "subscribe_events", "event_type": "state_changed"})
                    answer = await ws.receive_json()
                    if answer.get("success"):
                        accepted += 1
                    else:
                        refused += 1
                        error = error or answer["error"]
                        if refused >= 10:
                            break
                result.update(accepted=accepted, refused=refused, error=error)
                print("MARK subscribed", flush=True)
                await asyncio.sleep(0.3)
            await ws.close()
    return result


async def run_client(url: str, token: str, phase: str, arg: int = 0, on_mark=None) -> dict[str, Any]:
    """Run one phase in a child process; ``on_mark(name)`` is awaited at each ``MARK`` line it prints."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--client", url, token, phase, str(arg), stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    result: dict[str, Any] = {}
    async for line in proc.stdout:
        text = line.decode().strip()
        if text.startswith("MARK ") and on_mark is not None:
            await on_mark(text[5:])
        elif text.startswith(RESULT_PREFIX):
            result = json.loads(text[len(RESULT_PREFIX) :])
    await proc.wait()
    return result


# --- the hub -------------------------------------------------------------------------------------------
def mac(i: int) -> str:
    return ":".join(f"{b:02x}" for b in (0x020000000000 + i).to_bytes(6, "big"))


async def start_hub(data_dir: Path, http: dict[str, Any], hub_section: dict[str, Any]):
    import hub_esp32_node.plugin

    from hub import ConfigError
    from hub.core.hub import freeze_startup_heap
    from hub.testing import create_user_and_token, make_hub

    raw: dict[str, Any] = {"hub": {"data_dir": str(data_dir), **hub_section}, "http": {"port": 0, **http}}
    try:
        hub = make_hub(raw, builtins=("hub.plugins.http",), plugins=[(hub_esp32_node.plugin, "esp32_node")])
        caps = bool(hub_section)
    except ConfigError:  # a hub from before the limits: run it without them
        raw["hub"] = {"data_dir": str(data_dir)}
        raw["http"] = {"port": 0}
        hub = make_hub(raw, builtins=("hub.plugins.http",), plugins=[(hub_esp32_node.plugin, "esp32_node")])
        caps = False
    user = await create_user_and_token(hub, "owner")  # before start: no onboarding link is printed
    await hub.async_start()
    freeze_startup_heap()  # as `hub run` does: what exists after start is out of the collector's reach
    return hub, user.token, caps


def make_fleet(hub, nodes: int, entities: int) -> None:
    registry = hub.registry
    now = time.time()
    keys = [f"reading_{k}" for k in range(entities)]
    try:
        registry.get_or_register(mac(0), name="node 00000", ts=now, limited=False)
        unlimited: dict[str, Any] = {"limited": False}  # an existing fleet, not new nodes arriving
    except TypeError:  # a hub from before the limits
        unlimited = {}
    for i in range(nodes):
        node = registry.get_or_register(mac(i), name=f"node {i:05d}", ts=now, **unlimited)
        for key in keys:
            registry.ensure_entity(node, key, unit="°C", device_class="temperature")
        registry.report_states(node, {key: 20.0 + (i + k) % 100 / 10 for k, key in enumerate(keys)}, now)
        registry.set_status(node, "offline" if i % 50 == 0 else "online", "message", now)


async def phase_fleet(args, data_dir: Path, phase: str) -> dict[str, Any]:
    from hub import DATA_HTTP_URL

    hub, token, _caps = await start_hub(data_dir, {}, {})
    ticker = LagTicker()
    try:
        make_fleet(hub, args.nodes, args.entities)
        gc.collect()
        gc.freeze()  # the fleet as `hub run` has it: restored before the heap is frozen
        out: dict[str, Any] = {"phase": phase, "nodes": args.nodes, "entities_per_node": args.entities}
        ticker.start()
        await asyncio.sleep(2)
        ticker.figures(out, "idle")

        async def mark(_name: str) -> None:
            ticker.figures(out, "single")

        result = await run_client(hub.data[DATA_HTTP_URL], token, phase, on_mark=mark)
        ticker.figures(out, "fleet")
        out.update(result)
        return out
    finally:
        await ticker.stop()
        await hub.async_stop()


async def phase_slow(args, data_dir: Path) -> dict[str, Any]:
    from hub import DATA_HTTP_URL

    hub, token, _caps = await start_hub(data_dir, {}, {})
    ticker = LagTicker()
    try:
        make_fleet(hub, args.nodes, args.entities)
        gc.collect()
        gc.freeze()  # the fleet as `hub run` has it: restored before the heap is frozen
        out: dict[str, Any] = {"phase": "slow", "requests": args.slow_requests, "rss_before_mb": rss_mb()}
        peak = [rss_mb()]

        async def sample() -> None:
            while True:
                peak[0] = max(peak[0], rss_mb())
                await asyncio.sleep(0.05)

        sampler = asyncio.get_running_loop().create_task(sample())
        ticker.start()
        result = await run_client(hub.data[DATA_HTTP_URL], token, "slow", args.slow_requests)
        ticker.figures(out, "slow")
        await asyncio.sleep(1.0)
        sampler.cancel()
        gc.collect()
        out["rss_peak_mb"] = peak[0]
        out["rss_after_client_left_mb"] = rss_mb()
        out["slow_disconnects"] = hub.metrics.value("websocket_slow_disconnects")
        out.update(result)
        return out
    finally:
        await ticker.stop()
        await hub.async_stop()


async def phase_subs(args, data_dir: Path, limit: int | None) -> dict[str, Any]:
    from hub import DATA_HTTP_URL

    http = {"websocket_max_subscriptions": limit} if limit else {}
    hub, token, caps = await start_hub(data_dir, http, {"limits": {}} if limit else {})
    ticker = LagTicker()
    try:
        out: dict[str, Any] = {
            "phase": "subs",
            "asked": args.subscriptions,
            "max_subscriptions": limit if caps else None,
        }
        ticker.start()

        async def mark(_name: str) -> None:
            ticker.reset()

        result = await run_client(hub.data[DATA_HTTP_URL], token, "subs", args.subscriptions, on_mark=mark)
        ticker.figures(out, "close")
        out.update(result)
        return out
    finally:
        await ticker.stop()
        await hub.async_stop()


async def phase_flood(args, data_dir: Path, phase: str) -> dict[str, Any]:
    from hub import DATA_HTTP_URL

    hub, token, caps = await start_hub(data_dir, {}, {"limits": json.loads(args.limits)})
    ticker = LagTicker()
    rng = random.Random(7)
    try:
        gc.collect()
        limits = hub.registry.limits if caps else None
        out: dict[str, Any] = {"phase": phase, "limits": limits and limits.__repr__(), "rss_before_mb": rss_mb()}
        ticker.start()
        started = time.perf_counter()
        dispatch = hub.messages.dispatch
        if phase == "macs":
            body = b'{"temperature":21.5,"humidity":40,"uptime":12}'
            for i in range(args.macs):
                dispatch(f"devices/{rng.getrandbits(48):012X}/data", body)
                if i % 500 == 499:
                    await asyncio.sleep(0)
            out["messages"] = args.macs
        else:
            for i in range(1000):
                body = orjson.dumps({f"k{i}_{k}": k for k in range(100)})
                dispatch("devices/02:00:00:00:00:01/data", body)
                if i % 5 == 4:
                    await asyncio.sleep(0)
            out["messages"] = 1000
            node = hub.registry.get("02:00:00:00:00:01")
            out["entities"] = len(node.entities) if node else 0
        out["seconds"] = round(time.perf_counter() - started, 2)
        ticker.figures(out, "ingest")
        gc.collect()
        out["rss_after_mb"] = rss_mb()
        out["nodes"] = len(hub.registry)
        out["rejected"] = _rejections(hub)
        await asyncio.sleep(0.05)  # let the ticker finish the interval that spans the collection above
        ticker.reset()
        result = await run_client(hub.data[DATA_HTTP_URL], token, "api")
        out["api_get_ms"], out["api_get_bytes"] = result.get("get_ms"), result.get("get_bytes")
        out["api_fleet_ms"] = result.get("fleet_ms")
        ticker.figures(out, "api")
        return out
    finally:
        await ticker.stop()
        await hub.async_stop()


def _rejections(hub) -> dict[str, int]:
    """``hub_messages_rejected_total`` by reason, read from the hub's Prometheus registry."""
    found: dict[str, int] = {}
    for metric in hub.metrics.registry.collect():
        if metric.name == "hub_messages_rejected":
            for sample in metric.samples:
                if sample.name.endswith("_total") and sample.value:
                    found[sample.labels["reason"]] = int(sample.value)
    return found


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--entities", type=int, default=5)
    parser.add_argument("--subscriptions", type=int, default=20_000)
    parser.add_argument("--macs", type=int, default=100_000)
    parser.add_argument("--slow-requests", type=int, default=20, help="unread get_nodes of the slow phase")
    parser.add_argument("--phases", default="api,ws,slow,subs,macs,entities")
    parser.add_argument(
        "--limits", default="{}", help='hub: limits: for macs/entities, as JSON, e.g. {"max_nodes": 5000}'
    )
    args = parser.parse_args()
    import tempfile

    for phase in args.phases.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            if phase in ("api", "ws"):
                out = await phase_fleet(args, Path(tmp), phase)
            elif phase == "slow":
                out = await phase_slow(args, Path(tmp))
            elif phase == "subs":
                out = await phase_subs(args, Path(tmp), None)
                print(json.dumps(out), flush=True)
                with tempfile.TemporaryDirectory() as tmp2:
                    out = await phase_subs(args, Path(tmp2), args.subscriptions)
            else:
                out = await phase_flood(args, Path(tmp), phase)
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        url, token, phase, arg = sys.argv[2:6]
        print(RESULT_PREFIX + json.dumps(asyncio.run(client_main(url, token, phase, int(arg)))), flush=True)
    else:
        asyncio.run(main())
