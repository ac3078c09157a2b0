"""A private Mosquitto for tests and benchmarks, tuned exactly like ``deploy/mosquitto.conf``.

Crash tests and benchmarks must not share the machine's broker (other tests use
it, and its default ``max_queued_messages`` of 1000 silently drops messages
for a subscriber that is down).  This starts ``mosquitto`` on a free loopback
port with the deployment's tuning lines, anonymous access on loopback only, and
persistence in a folder of the caller's choosing, so a restart of the broker
keeps its queues just as a real deployment would.

The tuning lines ship inside the package (``mosquitto_tuning.conf``), so this works
from an installed wheel; ``tests/mqtt/test_mosquitto_conf.py`` checks that they
are exactly the tuning block of ``deploy/mosquitto.conf``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from importlib.resources import files
from pathlib import Path

from .ports import free_port

TUNING_FILE = "mosquitto_tuning.conf"
"""Package data of :mod:`hub.testing`: the tuning block of deploy/mosquitto.conf."""


def tuning_lines() -> list[str]:
    """The deployment's tuning options (in-flight window, queue limits), one option per line, comments left out."""
    text = files(__package__).joinpath(TUNING_FILE).read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def mosquitto_binary() -> str | None:
    """The ``mosquitto`` executable (Debian installs it in /usr/sbin, often not on a user's PATH), or None."""
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")


class PrivateMosquitto:
    """``with PrivateMosquitto(workdir) as broker: broker.url`` — started, then terminated on exit.

    The config is written to ``broker.conf`` when the object is made; a test may rewrite
    it before :meth:`start` (e.g. to drop the tuning, or to add TLS).  The broker can be
    stopped and started again on the same port, keeping its persistence folder.
    """

    def __init__(self, workdir: Path, port: int | None = None, *, config: str | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        # Started as root, Mosquitto switches to the user "mosquitto", who cannot write into a private tmp folder.
        stay = "user root\n" if os.geteuid() == 0 else ""
        self.conf.write_text((self.tuned_config() if config is None else config) + stay)

    def tuned_config(self) -> str:
        """The tuning lines, a loopback listener on :attr:`port`, anonymous access, persistence in the workdir."""
        return "\n".join(
            [
                *tuning_lines(),
                f"listener {self.port} 127.0.0.1",
                "allow_anonymous true",
                "persistence true",
                f"persistence_location {self.workdir}/",
                "",
            ]
        )

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> PrivateMosquitto:
        """Start the broker; RuntimeError (with its log) if it exits or does not listen within ``timeout``."""
        binary = mosquitto_binary()
        if binary is None:
            raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([binary, "-c", str(self.conf)], stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while True:  # synchronous on purpose: benchmarks and sync fixtures use it too
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.process.returncode}: {self._log_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"mosquitto did not listen on 127.0.0.1:{self.port} within {timeout:g} s: {self._log_text()}"
                    ) from None
                time.sleep(0.05)

    def stop(self) -> None:
        """Terminate the broker (it saves its persistence file on SIGTERM)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    async def async_start(self, timeout: float = 10.0) -> PrivateMosquitto:
        """:meth:`start` off the event loop (which may host a hub that must keep running meanwhile)."""
        return await asyncio.to_thread(self.start, timeout)

    async def async_stop(self) -> None:
        """:meth:`stop` off the event loop."""
        await asyncio.to_thread(self.stop)

    def _log_text(self) -> str:
        return self.log.read_text(errors="replace").strip() if self.log.exists() else ""

    def __enter__(self) -> PrivateMosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
