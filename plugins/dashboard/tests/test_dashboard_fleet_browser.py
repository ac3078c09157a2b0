"""In a real browser: the fleet page follows simulated nodes live, and shows what devices say as text only."""

from __future__ import annotations

import time

import orjson
from dashboard_testing import TIMEOUT, node_id, random_mac, require_playwright, row, sign_in

require_playwright()

from playwright.async_api import expect

from hub import STATUS_OFFLINE
from hub.plugins.http import DATA_SERVER
from hub.testing import wait_until

XSS = '<img src=x onerror="window.__xss=1;alert(1)">'


async def test_nodes_appear_live_and_go_offline_when_their_simulator_dies(page, dashboard) -> None:
    await sign_in(page)
    await page.evaluate("() => { window.__notReloaded = true; }")
    first = await dashboard.start_node()
    second = await dashboard.start_node()

    for node in (first, second):  # no reload, no polling: the rows arrive over the WebSocket
        await expect(row(page, node.mac).locator(".node-name")).to_have_text(node.name, timeout=TIMEOUT)
        await expect(row(page, node.mac).locator(".badge")).to_have_text("Online", timeout=TIMEOUT)
        await expect(row(page, node.mac).locator(".reading").first).to_contain_text("°C", timeout=TIMEOUT)
    await expect(row(page, first.mac).locator(".last-seen")).to_have_text("just now")
    await _expect_counts_match(page, dashboard)

    first.power_loss()  # the socket drops without DISCONNECT: Mosquitto publishes the Last Will
    await expect(row(page, first.mac).locator(".badge")).to_have_text("Offline", timeout=TIMEOUT)
    assert dashboard.hub.registry.get(node_id(first.mac)).status_reason == "lwt"
    await expect(row(page, second.mac).locator(".badge")).to_have_text("Online")
    await _expect_counts_match(page, dashboard)
    # "last seen" keeps ticking on its own once the node is silent.
    await expect(row(page, first.mac).locator(".last-seen")).to_have_text("2 s ago", timeout=TIMEOUT)

    await page.locator('button[data-filter="offline"]').click()
    await expect(row(page, first.mac)).to_be_visible()
    await expect(row(page, second.mac)).to_have_count(0)
    await page.locator('button[data-filter="all"]').click()
    await page.get_by_label("Search nodes by name or MAC").fill(second.mac.replace(":", "")[-6:])
    await expect(page.locator("tbody tr")).to_have_count(1)
    await expect(row(page, second.mac)).to_be_visible()
    assert "q=" in page.url
    assert await page.evaluate("() => window.__notReloaded === true")


async def test_a_node_named_with_markup_renders_as_text(page, dashboard) -> None:
    mac = random_mac()
    await dashboard.publish(mac, "data", [orjson.dumps({"temperature": 21.5, "location": XSS})])
    await wait_until(lambda: dashboard.hub.registry.get(node_id(mac)), message="node registered")
    token = (await dashboard.login())["access_token"]
    status, body = await dashboard.call(
        "PATCH", f"/api/nodes/{node_id(mac)}", token=token, json={"name": XSS, "description": f"see {XSS}"}
    )
    assert status == 200, body

    await sign_in(page)
    await expect(row(page, mac).locator(".node-name")).to_have_text(XSS, timeout=TIMEOUT)
    await row(page, mac).locator(".node-name").click()
    await expect(page.locator("h1")).to_have_text(XSS)
    await expect(page.locator(".description")).to_have_text(f"see {XSS}")
    await expect(page.locator("table.kv tr", has_text="location").locator("td")).to_have_text(XSS)
    assert await page.title() == f"{XSS} · hub"
    assert await page.locator("img").count() == 0
    assert await page.evaluate("() => window.__xss === undefined")
    assert page.dialogs == []


async def test_reconnects_and_reloads_the_fleet_after_the_socket_drops(page, dashboard) -> None:
    await sign_in(page)
    # Fault injection: only the http plugin can drop a client, so this reaches into its WebSocket hub.
    websockets = dashboard.hub.data[DATA_SERVER].websockets
    await wait_until(lambda: websockets.connections, message="the dashboard's WebSocket")
    for connection in list(websockets.connections):  # as the hub does to a client too slow to keep up
        connection.close_soon(1008, "too slow")
    await expect(page.locator(".connection")).to_have_text("Reconnecting…", timeout=TIMEOUT)
    await wait_until(lambda: not websockets.connections, message="the WebSocket to close")
    # A node registers while the dashboard is disconnected: its event is missed, the reload finds it.
    mac = random_mac()
    dashboard.hub.registry.get_or_register(node_id(mac), name="registered-while-away")
    await expect(page.locator(".connection")).to_have_text("Live", timeout=TIMEOUT)
    await expect(row(page, mac).locator(".node-name")).to_have_text("registered-while-away")
    # And the renewed subscriptions work: a change after the reconnect arrives live.
    dashboard.hub.registry.set_status(dashboard.hub.registry.get(node_id(mac)), STATUS_OFFLINE, "lwt")
    await expect(row(page, mac).locator(".badge")).to_have_text("Offline", timeout=TIMEOUT)


async def test_a_silent_node_turns_stale_before_presence_times_it_out(make_dashboard, new_page) -> None:
    dashboard = await make_dashboard(dashboard={"stale_after": 2}, presence={"timeout": 60, "initial_timeout": 60})
    page = await new_page(dashboard)
    mac = random_mac()
    await dashboard.publish(mac, "data", [orjson.dumps({"temperature": 20.5})])
    await sign_in(page)
    await expect(row(page, mac).locator(".badge")).to_have_text("Stale", timeout=TIMEOUT)
    assert dashboard.hub.registry.get(node_id(mac)).status == "online"  # the hub still counts it online
    await page.locator('button[data-filter="stale"]').click()
    await expect(row(page, mac)).to_be_visible()
    await page.locator('button[data-filter="all"]').click()
    await dashboard.publish(mac, "data", [orjson.dumps({"temperature": 20.75})])  # it speaks: fresh again
    await expect(row(page, mac).locator(".reading").first).to_have_text("Temperature 20.75 °C", timeout=TIMEOUT)
    await expect(row(page, mac).locator(".badge")).to_have_text("Online")


async def _expect_counts_match(page, dashboard) -> None:
    """The status counts on the page equal the hub's (the shared broker may bring other tests' nodes)."""

    def counts():
        by_status = dashboard.hub.registry.count_by_status()
        return by_status.get("online", 0), by_status.get("offline", 0)

    async def shown_equal_counts() -> bool:
        online, offline = counts()
        shown = (
            await page.locator('button[data-filter="online"] .stat-count').text_content(),
            await page.locator('button[data-filter="offline"] .stat-count').text_content(),
        )
        return shown == (str(online), str(offline)) and counts() == (online, offline)

    await wait_until(shown_equal_counts, message="the status counts on the page to equal the hub's", interval=0.1)


async def test_sort_filter_toggle_and_search_messages(page, dashboard) -> None:
    live = await dashboard.start_node(interval=1)
    silent = random_mac()
    await dashboard.publish(silent, "data", [orjson.dumps({"temperature": 19, "pressure": 1013.25})])
    await sign_in(page)
    await expect(row(page, silent).locator(".badge")).to_have_text("Offline", timeout=TIMEOUT)
    # Chips say what they are: the same position can be hPa on one row and KiB on another.
    await expect(row(page, silent).locator(".reading .reading-label")).to_have_text(["Temperature", "Pressure"])

    # The shared broker may bring other tests' nodes: compare the order of this test's two rows.
    async def order(first: str, then: str) -> bool:
        return await page.evaluate(
            """([first, then]) => {
                 const ids = [...document.querySelectorAll('tbody tr[data-node-id]')].map(tr => tr.dataset.nodeId);
                 return ids.includes(first) && ids.includes(then) && ids.indexOf(first) < ids.indexOf(then);
               }""",
            [first, then],
        )

    async def silent_first() -> bool:
        return await order(node_id(silent), node_id(live.mac))

    async def live_first() -> bool:
        return await order(node_id(live.mac), node_id(silent))

    dashboard.hub.registry.update_node(dashboard.hub.registry.get(node_id(silent)), name="zz silent")  # last by name
    await page.get_by_label("Sort by").select_option("status")
    await wait_until(silent_first, message="the offline node sorted first")  # problems first
    await page.reload()
    await expect(page.get_by_label("Sort by")).to_have_value("status")  # remembered
    await wait_until(silent_first, message="the offline node still first after a reload")
    await page.get_by_label("Sort by").select_option("last_seen")
    await wait_until(silent_first, message="the silent node first by last seen")
    await page.get_by_label("Sort by").select_option("name")
    await wait_until(live_first, message="by name, 'zz silent' last")

    offline = page.locator('button[data-filter="offline"]')
    await offline.click()
    await expect(offline).to_have_attribute("aria-pressed", "true")
    await expect(row(page, live.mac)).to_have_count(0)
    await offline.click()  # the active card again: the filter is cleared
    await expect(page.locator('button[data-filter="all"]')).to_have_attribute("aria-pressed", "true")
    await expect(row(page, live.mac)).to_be_visible()

    await offline.click()
    await page.get_by_label("Search nodes by name or MAC").fill(live.mac.replace(":", "")[-6:])
    await expect(page.locator(".table-foot")).to_contain_text("No offline node matches")
    await expect(page.locator(".table-foot")).to_contain_text("1 in other statuses do")
    await page.get_by_role("button", name="Show all statuses").click()
    await expect(row(page, live.mac)).to_be_visible()
    await page.get_by_label("Search nodes by name or MAC").fill("no-such-node")
    await expect(page.locator(".table-foot")).to_contain_text("No node matches “no-such-node”.")
    await page.get_by_role("button", name="Clear search").click()
    await expect(page.get_by_label("Search nodes by name or MAC")).to_be_focused()
    await expect(row(page, silent)).to_be_visible()
    await expect(row(page, live.mac)).to_be_visible()


async def test_keyboard_only(page, dashboard) -> None:
    node = await dashboard.start_node(interval=1)
    await sign_in(page)
    await expect(row(page, node.mac)).to_be_visible(timeout=TIMEOUT)
    await page.keyboard.press("/")  # jump to search
    await expect(page.get_by_label("Search nodes by name or MAC")).to_be_focused()
    await page.keyboard.type(node.mac[-5:])
    await expect(page.locator("tbody tr")).to_have_count(1, timeout=TIMEOUT)
    # Tab to the node's link and follow it with Enter; focus lands on the new page's content.
    link = row(page, node.mac).locator(".node-name")
    for _ in range(20):
        if await link.evaluate("el => el === document.activeElement"):
            break
        await page.keyboard.press("Tab")
    await expect(link).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("h1.node-title")).to_have_text(node.name, timeout=TIMEOUT)
    await expect(page.locator("main")).to_be_focused()
    # The skip link is the first stop of the page and takes focus past the header.
    await page.reload()
    await expect(page.locator("h1.node-title")).to_have_text(node.name, timeout=TIMEOUT)
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("main")).to_be_focused()


async def test_a_big_fleet_draws_only_the_rows_on_screen(page, dashboard) -> None:
    registry = dashboard.hub.registry
    for i in range(3000):
        mac = f"02:ee:00:00:{i // 256:02x}:{i % 256:02x}"
        node = registry.get_or_register(mac, name=f"bulk-{i:04d}", limited=False)  # a fleet, not 3,000 arrivals
        registry.ensure_entity(node, "temperature", unit="°C", device_class="temperature")
        registry.report_states(node, {"temperature": 20 + i % 10}, time.time())
    await sign_in(page)
    drawn = page.locator("table.fleet tbody tr[data-node-id]")
    await expect(drawn.first).to_contain_text("bulk-0000", timeout=TIMEOUT)
    # The hub answers at most 1,000 nodes a page: the page followed every one of them.
    count = page.locator('button[data-filter="all"] .stat-count')
    await expect(count).to_have_text(str(len(registry)), timeout=TIMEOUT)
    assert await drawn.count() < 100  # of 3,000
    # The page is as tall as the whole list, and scrolling to the end draws the last rows.
    await page.evaluate("() => window.scrollTo(0, document.documentElement.scrollHeight)")
    await expect(page.locator("tr[data-node-id='02:ee:00:00:0b:b7']")).to_be_visible(timeout=TIMEOUT)  # bulk-2999
    assert await drawn.count() < 100
    await page.get_by_label("Search nodes by name or MAC").fill("bulk-1234")
    await expect(drawn).to_have_count(1)


async def test_group_by_area_with_counts_and_set_the_area_on_the_node_page(page, dashboard) -> None:
    registry = dashboard.hub.registry
    macs = [(await dashboard.start_node(interval=1)).mac for _ in range(3)]  # they keep reporting: online
    area = f"greenhouse {macs[0][-2:]}"  # this test's own area on the shared broker
    for mac in macs[:2]:
        registry.update_node(registry.get(node_id(mac)), area=area, tags=["beta"])
    await sign_in(page)
    await page.get_by_label("Group by area").check()
    heading = page.locator(f"tr.area-row[data-area='{area}']")
    await expect(heading).to_contain_text("2 online · 0 stale · 0 offline", timeout=TIMEOUT)
    # The area's nodes follow its heading.
    order = await page.evaluate(
        """area => [...document.querySelectorAll('tbody tr')].map(tr => tr.dataset.area ?? tr.dataset.nodeId)""",
        area,
    )
    start = order.index(area)
    assert set(order[start + 1 : start + 3]) == {node_id(m) for m in macs[:2]}
    await page.reload()
    await expect(page.get_by_label("Group by area")).to_be_checked()  # remembered

    # Search finds an area's nodes by its name; the third node joins the area from its page.
    await page.get_by_label("Search nodes by name or MAC").fill(area)
    await expect(page.locator("tbody tr[data-node-id]")).to_have_count(2)
    await page.get_by_label("Search nodes by name or MAC").fill("")
    await row(page, macs[2]).locator(".node-name").click()
    await page.get_by_role("button", name="Edit").click()
    await page.get_by_label("Area").fill(area)
    await page.get_by_label("Tags").fill("beta, relay-board")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator(".facts .area-name")).to_have_text(area)
    await expect(page.locator(".facts .tag")).to_have_text(["beta", "relay-board"])
    node = registry.get(node_id(macs[2]))
    assert (node.area, node.tags) == (area, ["beta", "relay-board"])
    await page.get_by_role("link", name="← Fleet").click()
    await expect(page.locator(f"tr.area-row[data-area='{area}']")).to_contain_text("3 online", timeout=TIMEOUT)
