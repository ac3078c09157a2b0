"""End to end: `hub run --http-port` in a real process prints the onboarding link; the link creates the owner."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp

from hub.testing import free_port

HUB = str(Path(sys.executable).parent / "hub")


async def test_hub_run_prints_a_one_time_link_that_creates_the_owner(tmp_path: Path) -> None:
    http_port, broker_port = free_port(), free_port()
    config = tmp_path / "config.yaml"
    config.write_text(f"hub:\n  data_dir: data\nbroker:\n  port: {broker_port}\nhttp:\n  port: 1\n")
    process = await asyncio.create_subprocess_exec(
        HUB,
        "run",
        "-c",
        str(config),
        "--http-port",
        str(http_port),
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "HUB_LOAD_PLUGINS": ""},
    )
    log: list[str] = []
    try:
        async with asyncio.timeout(30):
            while True:
                line = (await process.stderr.readline()).decode()
                assert line, "hub run exited:\n" + "".join(log)
                log.append(line)
                found = re.search(r"(http://127\.0\.0\.1:(\d+))/onboarding#token=([A-Za-z0-9_-]+)", line)
                if found:
                    break
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
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            await process.wait()
    assert process.returncode == 0
