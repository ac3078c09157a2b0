"""``hub node set``: area and tags through the running hub's API, with the token and address of ``hub command``."""

from __future__ import annotations

import asyncio
import json

from http_helpers import Api

from hub.core import cli

MAC = "24:6f:28:aa:00:01"


async def run(api: Api, capsys, *argv: str, token: str | None = None) -> tuple[int, str, str]:
    args = ["node", "set", *argv, "--url", api.url, "--token", api.token if token is None else token]
    code = await asyncio.to_thread(cli.main, args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_set_area_and_tags_then_untag_and_clear(api: Api, capsys) -> None:
    node = api.hub.registry.get_or_register(MAC, name="Pump")
    code, out, _ = await run(api, capsys, "24-6F-28-AA-00-01", "--area", "Greenhouse 2", "--tag", "Beta", "--tag", "x")
    assert code == 0 and out.strip() == f"{MAC}  Pump  area: Greenhouse 2  tags: beta, x"
    assert (node.area, node.tags) == ("Greenhouse 2", ["beta", "x"])
    code, out, _ = await run(api, capsys, MAC, "--untag", "x", "--tag", "relay-board", "--name", "Main pump")
    assert code == 0 and (node.name, node.tags) == ("Main pump", ["beta", "relay-board"])
    code, out, _ = await run(api, capsys, MAC, "--no-area", "--clear-tags", "--json")
    assert code == 0 and (node.area, node.tags) == (None, [])
    assert json.loads(out)["node_id"] == MAC


async def test_problems_exit_1_with_the_apis_message(api: Api, capsys) -> None:
    api.hub.registry.get_or_register(MAC)
    code, _, err = await run(api, capsys, MAC)
    assert code == 1 and "nothing to change" in err
    code, _, err = await run(api, capsys, MAC, "--tag", "a,b")
    assert code == 1 and "contains a comma" in err
    code, _, err = await run(api, capsys, "ff:ff:ff:ff:ff:ff", "--tag", "beta")
    assert code == 1 and "no node 'ff:ff:ff:ff:ff:ff'" in err
    code, _, err = await run(api, capsys, MAC, "--tag", "beta", token="wrong")
    assert code == 1 and err.startswith("error: ")
    assert api.hub.registry.get(MAC).tags == []


async def list_nodes(api: Api, capsys, *argv: str, token: str | None = None) -> tuple[int, str, str]:
    args = ["node", "list", *argv, "--url", api.url, "--token", api.token if token is None else token]
    code = await asyncio.to_thread(cli.main, args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_node_list_follows_every_page(api: Api, capsys) -> None:
    registry = api.hub.registry
    macs = [":".join(f"{b:02x}" for b in (0x020000000000 + i).to_bytes(6, "big")) for i in range(2500)]
    for i, mac in enumerate(macs):  # three pages of the API's largest size
        node = registry.get_or_register(mac, name=f"n{i}", limited=False)
        registry.ensure_entity(node, "temperature")
        if i % 2:
            registry.update_node(node, tags=["beta"], area="Greenhouse")
    code, out, _ = await list_nodes(api, capsys, "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["node_id"] for r in rows] == macs
    assert rows[1] == {
        "node_id": macs[1],
        "name": "n1",
        "status": "unknown",
        "last_seen": None,
        "entities": 1,
        "firmware_version": None,
        "area": "Greenhouse",
        "tags": ["beta"],
    }
    code, out, _ = await list_nodes(api, capsys, "--tag", "beta", "--area", "greenhouse")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("NODE") and lines[-1] == "1250 node(s)"
    assert lines[1].split()[:3] == [macs[1], "n1", "unknown"]
    code, out, _ = await list_nodes(api, capsys, "--json", "--status", "offline")
    assert code == 0 and json.loads(out) == []
    code, _, err = await list_nodes(api, capsys, token="wrong")
    assert code == 1 and err.startswith("error: ")
