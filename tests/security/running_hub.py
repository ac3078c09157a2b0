"""A real ``hub run`` in its own process, as an operator starts it, for the security tests.

Every installed plugin loads (as ``hub run`` loads them: entry points), the
embedded broker listens on a free loopback port, storage is SQLite in a temporary
data folder, and the owner and a long-lived token are made with the real CLI
(``hub user create``, ``hub token create``) before the start.  :meth:`snapshot`
reads what the hub keeps (every database table, ``auth.json``, the firmware
folders) without going through the API, so a test can prove that requests left
it unchanged.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp

from hub.testing import TEST_PASSWORD, HubProcess, free_port, wait_until
from hub.testing.process import HUB

NODE = "02:00:00:00:00:0a"

CONFIG = """\
hub:
  data_dir: data
broker:
  port: {broker_port}
http:
  port: {http_port}
  login_attempts_threshold: 1000000   # schemathesis signs in wrongly by the hundred; it must not ban itself
presence:
  initial_timeout: 3600               # nothing changes by itself while the test compares snapshots
  timeout: 3600
esphome:
  firmware_dir: {esphome}
nodes:
  "{node}":
    name: probe
    area: lab
    tags: [fuzz]
"""


class RunningHub:
    """``hub run`` in a subprocess, its URL, the owner's long-lived token, and its data folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.http_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.data = folder / "data"
        self.config = folder / "config.yaml"
        self.token = ""
        self.process: HubProcess | None = None

    async def _cli(self, *args: str, stdin: bytes = b"") -> str:
        process = await asyncio.create_subprocess_exec(
            HUB,
            *args,
            "-c",
            str(self.config),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(stdin), 60)
        assert process.returncode == 0, f"hub {' '.join(args)} failed: {err.decode()}"
        return out.decode()

    async def start(self) -> RunningHub:
        (self.folder / "esphome").mkdir()
        self.config.write_text(
            CONFIG.format(
                broker_port=free_port(), http_port=self.http_port, node=NODE, esphome=self.folder / "esphome"
            ),
        )
        await self._cli(
            "user", "create", "--username", "owner", "--password-stdin", stdin=f"{TEST_PASSWORD}\n".encode()
        )
        self.token = (await self._cli("token", "create", "--name", "security")).strip().splitlines()[-1]
        self.process = HubProcess(self.config)  # every installed plugin, as `hub run` loads them
        await self.process.running()
        async with aiohttp.ClientSession() as session:

            async def healthy() -> bool:
                try:
                    async with session.get(f"{self.url}/api/health") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False

            await wait_until(healthy, timeout=60, interval=0.1, message="hub run to answer /api/health")
        # The configured node is written by the storage writer's first flush, which may come after the first
        # answer: a snapshot taken before it would see the node appear later, as if a request had made it.
        await wait_until(self._node_stored, timeout=30, interval=0.1, message=f"the configured node {NODE} stored")
        return self

    def _database(self) -> sqlite3.Connection:
        """The hub's database, opened read-only beside the running hub."""
        return sqlite3.connect(f"file:{self.data / 'hub.db'}?mode=ro", uri=True)

    def _node_stored(self) -> bool:
        try:
            with self._database() as db:
                return db.execute("SELECT 1 FROM nodes WHERE node_id = ?", (NODE,)).fetchone() is not None
        except sqlite3.OperationalError:  # no database or no table yet
            return False

    async def stop(self) -> int | None:
        """SIGTERM, then the exit code (None if it never started)."""
        return None if self.process is None else await asyncio.to_thread(self.process.stop, 60)

    def log(self) -> str:
        return "" if self.process is None else self.process.log(last=200)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def snapshot(self) -> dict[str, Any]:
        """Every table of the database, auth.json and the firmware folders, read beside the hub (read-only)."""
        tables: dict[str, Any] = {}
        with self._database() as db:
            names = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
            for name in names:
                tables[name] = sorted(map(repr, db.execute(f'SELECT * FROM "{name}"').fetchall()))
        files = {
            str(path.relative_to(self.folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(self.folder.rglob("*"))
            if path.is_file() and path.suffix not in (".db", ".db-wal", ".db-shm") and path.name != "hub.db-wal"
        }
        return {"tables": tables, "files": files}
