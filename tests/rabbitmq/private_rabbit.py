"""A private RabbitMQ node for tests that must stop or restart the broker: the shared one is never touched.

Its own node name, ports (AMQP, MQTT, distribution), Mnesia database, logs,
config and Erlang cookie, all under a temporary folder; it registers with the
machine's epmd under its own name.  Stopping it (SIGTERM: a clean ``rabbitmqctl
stop``) and starting it again on the same folder keeps its durable queues and
their messages, which is what a broker restart means.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from hub.testing import free_port

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
START_TIMEOUT = 120.0
"""Seconds a node may take to boot (about 20 on this 2-core machine when it is busy)."""


def rabbitmq_installed() -> bool:
    return SERVER.exists() and shutil.which("erl") is not None


class PrivateRabbit:
    """One RabbitMQ node with the MQTT plugin, on free loopback ports."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.amqp_port = free_port()
        self.mqtt_port = free_port()
        self.dist_port = free_port()
        self.name = f"hubtest-{uuid.uuid4().hex[:8]}@localhost"
        (folder / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.amqp_port}\n"
            f"mqtt.listeners.tcp.1 = 127.0.0.1:{self.mqtt_port}\n"
            "log.console = false\n"
        )
        (folder / "enabled_plugins").write_text("[rabbitmq_mqtt].\n")
        (folder / "rabbitmq-env.conf").write_text("")  # not the machine's: its NODENAME is the shared node's
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://127.0.0.1:{self.mqtt_port}"

    def _env(self) -> dict[str, str]:
        folder = str(self.folder)
        return {
            **os.environ,
            "HOME": folder,  # the Erlang cookie
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": f"{folder}/mnesia",
            "RABBITMQ_LOG_BASE": f"{folder}/log",
            "RABBITMQ_CONFIG_FILE": f"{folder}/rabbitmq.conf",
            "RABBITMQ_ENABLED_PLUGINS_FILE": f"{folder}/enabled_plugins",
            "RABBITMQ_CONF_ENV_FILE": f"{folder}/rabbitmq-env.conf",
            "RABBITMQ_PID_FILE": f"{folder}/rabbitmq.pid",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    async def start(self) -> None:
        """Boot the node and wait (bounded) until AMQP and MQTT accept connections."""
        log = open(self.folder / "server.log", "ab")  # noqa: SIM115 - the child writes to it until it exits
        self._process = subprocess.Popen(
            [str(SERVER)], env=self._env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT
        for port in (self.amqp_port, self.mqtt_port):
            while not await _accepts(port):
                if self._process.poll() is not None or loop.time() > deadline:
                    tail = (self.folder / "server.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"private RabbitMQ did not start:\n{tail}")
                await asyncio.sleep(0.2)

    async def stop(self) -> None:
        """A clean stop (the server script runs ``rabbitmqctl stop`` on SIGTERM); waits until it exited."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            await asyncio.to_thread(process.wait, 10)

    async def kill(self) -> None:
        """Stop even a node that hangs: the whole process group."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, 15)
                await asyncio.to_thread(process.wait, 60)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                os.killpg(process.pid, 9)


async def _accepts(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True
