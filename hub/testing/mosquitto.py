"""A private Mosquitto for tests and benchmarks, tuned exactly like ``deploy/mosquitto.conf``.

Crash tests and benchmarks must not share the machine's broker (other tests use
it, and its default ``max_queued_messages`` of 1000 silently drops messages
for a subscriber that is down).  This starts ``mosquitto`` on a free loopback
port with the tuning lines of the shipped deployment config, anonymous access
on loopback only, and persistence in a folder of the caller's choosing, so a
restart of the broker keeps its queues just as a real deployment would.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

DEPLOY_CONF = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto.conf"

# Lines of the deployment config that describe *where* and *who*, replaced for a private instance.
_SITE_SPECIFIC = (
    "listener",
    "allow_anonymous",
    "password_file",
    "persistence_location",
    "log_dest",
    "log_type",
    "cafile",
    "certfile",
    "keyfile",
    "require_certificate",
    "pid_file",
    "user",
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tuning_lines(conf: Path = DEPLOY_CONF) -> list[str]:
    """The deployment config's tuning options (queues, in-flight window, persistence policy)."""
    lines = []
    for raw in conf.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line.split()[0] in _SITE_SPECIFIC:
            continue
        lines.append(line)
    return lines


class PrivateMosquitto:
    """``with PrivateMosquitto(workdir) as broker: broker.url`` — started, then terminated on exit."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        """Write the config and start the broker; RuntimeError if it does not listen within ``timeout``."""
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            "\n".join(
                [
                    *tuning_lines(),
                    f"persistence_location {self.workdir}/",
                    f"listener {self.port} 127.0.0.1",
                    "allow_anonymous true",
                    "log_dest none",
                ]
            )
            + "\n"
        )
        self.process = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                raise RuntimeError(f"mosquitto exited with {self.process.returncode}: {err.strip()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on 127.0.0.1:{self.port} within {timeout} s")

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

    def __enter__(self) -> PrivateMosquitto:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
