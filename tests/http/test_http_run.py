"""End to end: `hub run --http-port` in a real process prints the onboarding link; the link creates the owner."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp

from hub.testing import HubProcess, free_port, wait_until

ONBOARDING_LINK = re.compile(r"(http://127\.0\.0\.1:(\d+))/onboarding#token=([A-Za-z0-9_-]+)")


async def test_hub_run_prints_a_one_time_link_that_creates_the_owner(tmp_path: Path) -> None:
    http_port, broker_port = free_port(), free_port()
    config = tmp_path / "config.yaml"
    config.write_text(f"hub:\n  data_dir: data\nbroker:\n  port: {broker_port}\nhttp:\n  port: 1\n")
    hub = HubProcess(config, "--http-port", str(http_port), plugins="")
    try:
        await hub.running(timeout=30)
        found = await wait_until(
            lambda: next(filter(None, map(ONBOARDING_LINK.search, hub.lines)), None),
            timeout=30,
            message="the onboarding link in the log",
        )
        url, port, token = found.group(1), int(found.group(2)), found.group(3)
        assert port == http_port
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/api/nodes") as response:
                assert response.status == 401
            body = {"token": token, "username": "owner", "password": "a long enough password"}
            async with session.post(f"{url}/api/onboarding", json=body) as response:
                assert response.status == 201, await response.text()
                access = (await response.json())["access_token"]
            async with session.get(f"{url}/api/nodes", headers={"Authorization": f"Bearer {access}"}) as response:
                assert response.status == 200
            async with session.post(f"{url}/api/onboarding", json=body) as response:
                assert response.status == 403
        assert (Path(tmp_path) / "data" / "auth.json").exists()
    finally:
        code = hub.stop()
    assert code == 0, hub.log()
