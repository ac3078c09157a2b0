"""In a real browser: a node's page sends commands and follows each one live to its verdict."""

from __future__ import annotations

import time

import voluptuous as vol
from dashboard_testing import TIMEOUT, node_id, random_mac, require_playwright, sign_in

require_playwright()

from playwright.async_api import expect

from hub.testing import wait_until


def command_row(page, action: str):
    """The newest history row of an action (rows are newest first)."""
    return page.locator("table.commands tbody tr", has_text=action).first


async def test_status_request_reaches_succeeded(page, dashboard) -> None:
    node = await dashboard.start_node(interval=2)
    await sign_in(page, f"/nodes/{node_id(node.mac)}")
    await expect(page.get_by_text("No commands sent to this node yet.")).to_be_visible()
    await page.get_by_role("button", name="Status request", exact=True).click()
    row = command_row(page, "Status request")
    await expect(row.locator(".cmd-status .cmd-label")).to_have_text("Succeeded", timeout=TIMEOUT)
    await expect(page.locator(".command-latest")).to_have_text("Status request: Succeeded")
    await expect(row.get_by_role("button", name="Cancel")).to_have_count(0)
    assert node.commands.executed == ["STATUS_REQUEST"]
    # Every step was seen by the hub, and the page shows who sent it.
    command_id = await row.get_attribute("data-command-id")
    status, body = await dashboard.call("GET", f"/api/commands/{command_id}", token=dashboard.owner.token)
    assert status == 200 and [step["status"] for step in body["history"]][-1] == "succeeded"
    await expect(row).to_contain_text("owner")


async def test_a_failing_plugin_action_shows_the_nodes_reason(page, dashboard) -> None:
    dashboard.hub.commands.actions.register(
        "RELAY_CONTROL",
        {vol.Required("relay"): vol.All(int, vol.Range(1, 5)), vol.Required("state"): bool},
        "Switch relay N on or off.",
        owner="relays",
    )
    page.expected_console.append("status of 400")  # bad params are refused, on purpose
    node = await dashboard.start_node(interval=2)
    await sign_in(page, f"/nodes/{node_id(node.mac)}")
    await page.get_by_label("Action", exact=True).select_option("RELAY_CONTROL")
    await expect(page.locator("#command-params-hint")).to_contain_text("relay, state")

    await page.get_by_label("Params (JSON)").fill("{relay: 2}")
    await page.get_by_role("button", name="Send").click()
    await expect(page.get_by_role("alert")).to_have_text("The params are not valid JSON.")

    await page.get_by_label("Params (JSON)").fill('{"relay": 9, "state": true}')
    await page.get_by_role("button", name="Send").click()  # refused by the hub before anything is sent
    await expect(page.get_by_role("alert")).to_contain_text("relay")

    await page.get_by_label("Params (JSON)").fill('{"relay": 2, "state": true}')
    await page.get_by_role("button", name="Send").click()
    row = command_row(page, "Relay control")
    await expect(row.locator(".cmd-status .cmd-label")).to_have_text("Failed", timeout=TIMEOUT)
    await expect(row.locator(".cmd-detail")).to_have_text("unknown action RELAY_CONTROL")
    await expect(row).to_contain_text('{"relay":2,"state":true}')
    await expect(page.locator(".command-latest")).to_have_text("Relay control: Failed: unknown action RELAY_CONTROL")


async def test_reboot_asks_first(page, dashboard) -> None:
    node = await dashboard.start_node(interval=2)
    await sign_in(page, f"/nodes/{node_id(node.mac)}")
    await page.get_by_role("button", name="Reboot", exact=True).click()
    confirm = page.locator(".command-confirm")
    await expect(confirm).to_contain_text("Reboot this node?")
    await confirm.get_by_role("button", name="Cancel").click()
    await expect(confirm).to_be_hidden()
    await expect(page.locator("table.commands tbody tr")).to_have_count(0)

    await page.get_by_role("button", name="Reboot", exact=True).click()
    await confirm.get_by_role("button", name="Reboot").click()
    await expect(command_row(page, "Reboot").locator(".cmd-status .cmd-label")).to_have_text(
        "Succeeded", timeout=TIMEOUT
    )
    assert node.commands.executed == ["REBOOT"]


async def test_cancel_a_pending_command_and_page_through_history(page, dashboard) -> None:
    # A node that reported once and has no firmware listening: its commands stay pending.
    mac = random_mac()
    await dashboard.publish_readings(mac, [(time.time(), {"temperature": 20})])
    await wait_until(lambda: dashboard.hub.registry.get(node_id(mac)), message="the node registered")
    token = dashboard.owner.token
    for _ in range(22):
        status, body = await dashboard.call(
            "POST", f"/api/nodes/{node_id(mac)}/commands", token=token, json={"action": "STATUS_REQUEST"}
        )
        assert status == 201, body

    await sign_in(page, f"/nodes/{node_id(mac)}")
    rows = page.locator("table.commands tbody tr")
    await expect(rows).to_have_count(20)
    await page.get_by_role("button", name="Show older commands").click()
    await expect(rows).to_have_count(22)
    await expect(page.get_by_role("button", name="Show older commands")).to_be_hidden()

    await page.get_by_role("button", name="Status request", exact=True).click()
    await expect(rows).to_have_count(23)
    newest = rows.first
    await expect(newest.get_by_role("button", name="Cancel Status request")).to_be_visible()
    await newest.get_by_role("button", name="Cancel Status request").click()
    await expect(newest.locator(".cmd-status .cmd-label")).to_have_text("Cancelled")
    await expect(newest.get_by_role("button", name="Cancel Status request")).to_have_count(0)
    command_id = await newest.get_attribute("data-command-id")
    assert (
        dashboard.hub.commands.get(command_id) is None or dashboard.hub.commands.get(command_id).status == "cancelled"
    )
