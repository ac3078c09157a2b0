"""The dashboard in a real browser (Debian's Chromium, headless) against a hub with a big fleet.

    python benchmarks/dashboard_fleet.py [--nodes 10000] [--rate 1000] [--seconds 10] [--days 30]

A hub with storage (SQLite in a temporary directory), http and the dashboard, and ``--nodes``
nodes with five readings each, registered through the real registry.  Measures:

* **fleet, first render**: from navigation start (a reload, signed in) to the fleet table drawn;
* **fleet, memory**: the tab's JavaScript heap after a garbage collection, its DOM nodes, and the
  resident memory of the renderer process;
* **fleet, live**: ``--rate`` readings a second (``state_reported`` events of random nodes, fired
  in the hub and sent over the WebSocket) for ``--seconds``: the frame intervals the page achieves
  (requestAnimationFrame), long tasks (> 50 ms), and how busy the page's main thread was;
* **node page, first chart**: a node with ``--days`` days of one reading a minute (three keys), from
  navigation start to the first chart drawn with data, and to every chart drawn, for 24 h and 30 d.

Prints one JSON line.  Figures, never assertions: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import hub_dashboard.plugin
from playwright.async_api import async_playwright

from hub import DATA_HTTP_URL, Hub
from hub.testing import TEST_PASSWORD, create_user_and_token, make_hub

CHROMIUM = "/usr/bin/chromium"
KEYS = {
    "temperature": ("°C", "temperature"),
    "humidity": ("%", "humidity"),
    "pressure": ("hPa", "pressure"),
    "free_heap": ("B", "data_size"),
    "uptime": ("s", "duration"),
}

ROWS_DRAWN = "() => document.querySelectorAll('table.fleet tbody tr').length > 0 && performance.now()"
CHARTS_DRAWN = """() => {
  const charts = [...document.querySelectorAll('.chart')].map(el => el.chart && el.chart.plot && el.chart.pointCount);
  if (!charts.length) return false;
  window.__firstChart ??= charts.some(Boolean) ? performance.now() : undefined;
  return charts.every(Boolean) && [window.__firstChart, performance.now()];
}"""
FRAMES = """seconds => new Promise(resolve => {
  const stamps = [];
  const long = [];
  const observer = new PerformanceObserver(list => long.push(...list.getEntries().map(e => e.duration)));
  observer.observe({ type: 'longtask' });
  const end = performance.now() + seconds * 1000;
  const tick = t => { stamps.push(t); if (t < end) requestAnimationFrame(tick); else { observer.disconnect(); resolve({ stamps, long }); } };
  requestAnimationFrame(tick);
})"""


async def start_hub(data_dir: Path) -> Hub:
    raw = {
        "hub": {"data_dir": str(data_dir)},
        "storage": {"db_url": f"sqlite+aiosqlite:///{data_dir / 'bench.db'}"},
        "http": {"port": 0},
    }
    hub = make_hub(
        raw, builtins=("hub.plugins.storage", "hub.plugins.http"), plugins=[(hub_dashboard.plugin, "dashboard")]
    )
    await create_user_and_token(hub, "owner", TEST_PASSWORD)
    await hub.async_start()
    return hub


def make_fleet(hub: Hub, count: int) -> list[Any]:
    registry = hub.registry
    nodes = []
    now = time.time()
    for i in range(count):
        node = registry.get_or_register(
            ":".join(f"{b:02x}" for b in (0x020000000000 + i).to_bytes(6, "big")), limited=False
        )  # an existing fleet, not new nodes arriving
        for key, (unit, device_class) in KEYS.items():
            registry.ensure_entity(node, key, unit=unit, device_class=device_class)
        registry.report_states(node, readings(i), now)
        registry.set_status(node, "offline" if i % 50 == 0 else "online", "message", now)
        nodes.append(node)
    return nodes


def readings(i: int) -> dict[str, float]:
    return {
        "temperature": 20 + (i % 100) / 10,
        "humidity": 40 + i % 30,
        "pressure": 1000 + i % 30,
        "free_heap": 150000 + i % 5000,
        "uptime": 3600 + i,
    }


async def backfill(hub: Hub, node: Any, days: float) -> int:
    """One reading a minute of three keys for ``days`` days, through the registry and the batch writer."""
    steps = int(days * 1440)
    start = time.time() - steps * 60
    for step in range(steps):
        ts = start + step * 60
        hub.registry.report_states(node, {"temperature": 20 + step % 100 / 10, "humidity": 40 + step % 30}, ts)
        if step % 2000 == 0:
            await hub.durability.wait_committed()
    await hub.durability.wait_committed()
    return steps * 2


def renderer_rss_mb() -> float | None:
    """Resident memory of the biggest renderer of Playwright's Chromium (the tab's process)."""
    biggest = None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            if b"--type=renderer" not in cmdline or b"playwright" not in cmdline:
                continue
            rss_pages = int((proc / "statm").read_text().split()[1])
        except OSError:
            continue
        size = rss_pages * 4096 / 2**20
        biggest = size if biggest is None else max(biggest, size)
    return round(biggest, 1) if biggest is not None else None


async def live_load(hub: Hub, nodes: list[Any], rate: int, seconds: float) -> int:
    """``rate`` readings a second of random nodes, in 100 slices a second."""
    sent = 0
    slice_size = max(1, rate // 100)
    loop = asyncio.get_running_loop()
    started = loop.time()
    while loop.time() - started < seconds:
        now = time.time()
        for node in random.sample(nodes, slice_size):
            hub.registry.report_states(node, readings(random.randrange(10000)), now)
        sent += slice_size
        await asyncio.sleep(max(0.0, started + sent / rate - loop.time()))
    return sent


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def run(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    hub = await start_hub(data_dir)
    nodes = make_fleet(hub, args.nodes)
    await hub.durability.wait_committed()
    url = hub.data[DATA_HTTP_URL]
    result: dict[str, Any] = {"nodes": args.nodes}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        )
        page = await (await browser.new_context(base_url=url, viewport={"width": 1280, "height": 800})).new_page()
        await page.goto("/signin")
        await page.get_by_label("Username").fill("owner")
        await page.get_by_label("Password").fill(TEST_PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_function(ROWS_DRAWN, timeout=60_000)

        renders = []
        for _ in range(args.repeat):
            await page.reload()
            handle = await page.wait_for_function(ROWS_DRAWN, timeout=60_000, polling="raf")
            renders.append(await handle.json_value())
        result["fleet_first_render_ms"] = {"p50": round(statistics.median(renders)), "max": round(max(renders))}
        result["fleet_rows_drawn"] = await page.evaluate("document.querySelectorAll('table.fleet tbody tr').length")

        cdp = await page.context.new_cdp_session(page)
        await cdp.send("Performance.enable")
        await cdp.send("HeapProfiler.collectGarbage")
        heap = await cdp.send("Runtime.getHeapUsage")
        dom = await cdp.send("Memory.getDOMCounters")
        result["fleet_js_heap_mb"] = round(heap["usedSize"] / 2**20, 1)
        result["fleet_dom_nodes"] = dom["nodes"]
        result["renderer_rss_mb"] = renderer_rss_mb()

        def task_seconds(metrics: dict[str, Any]) -> float:
            return next(m["value"] for m in metrics["metrics"] if m["name"] == "TaskDuration")

        before = task_seconds(await cdp.send("Performance.getMetrics"))
        frames_task = asyncio.ensure_future(page.evaluate(FRAMES, args.seconds))
        sent = await live_load(hub, nodes, args.rate, args.seconds)
        frames = await frames_task
        busy = task_seconds(await cdp.send("Performance.getMetrics")) - before
        intervals = [b - a for a, b in zip(frames["stamps"], frames["stamps"][1:], strict=False)]
        result["live"] = {
            "readings_per_s": round(sent / args.seconds),
            "frames": len(intervals),
            "frame_ms_p50": round(quantile(intervals, 0.5), 1),
            "frame_ms_p95": round(quantile(intervals, 0.95), 1),
            "frame_ms_p99": round(quantile(intervals, 0.99), 1),
            "frame_ms_max": round(max(intervals, default=0), 1),
            "long_tasks": len(frames["long"]),
            "long_task_ms_total": round(sum(frames["long"])),
            "main_thread_busy_pct": round(100 * busy / args.seconds, 1),
        }
        await cdp.send("HeapProfiler.collectGarbage")
        result["fleet_js_heap_mb_after_live"] = round((await cdp.send("Runtime.getHeapUsage"))["usedSize"] / 2**20, 1)

        node = nodes[1]
        result["history_rows"] = await backfill(hub, node, args.days)
        for label in ("24h", "30d"):
            await page.evaluate("range => localStorage.setItem('hub.range', range)", label)
            timings = []
            for _ in range(args.repeat):
                await page.goto(f"/nodes/{node.node_id}")
                handle = await page.wait_for_function(CHARTS_DRAWN, timeout=60_000, polling="raf")
                timings.append(await handle.json_value())
            result[f"node_{label}_first_chart_ms"] = round(statistics.median(t[0] for t in timings))
            result[f"node_{label}_all_charts_ms"] = round(statistics.median(t[1] for t in timings))
        await browser.close()
    await hub.async_stop()
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=10000)
    parser.add_argument("--rate", type=int, default=1000, help="readings a second during the live phase")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hub-dashboard-bench-") as tmp:
        print(json.dumps(await run(args, Path(tmp))))


if __name__ == "__main__":
    asyncio.run(main())
