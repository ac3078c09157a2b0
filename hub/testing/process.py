"""``hub run`` as a real process, for the tests that need what only a process has: kill -9, SIGTERM, its memory.

A hub made in the test's own event loop (``hub_factory``) cannot be killed mid-write or measured apart from the
test.  :class:`HubProcess` starts the installed ``hub`` command beside the test's interpreter with a config file,
collects its log line by line in a thread (so the pipe never fills and a failed assertion can show the log), and
stops it the way an operator or a crash would.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

HUB = str(Path(sys.executable).parent / "hub")
"""The ``hub`` command installed beside the running interpreter (the one under test)."""
RUNNING = "running with plugins"
"""What ``hub run`` logs once every plugin has started."""


class HubProcess:
    """``hub run -c CONFIG [ARGS…]`` in a subprocess, its log (stderr) collected by a thread.

    ``plugins`` is ``HUB_LOAD_PLUGINS``: the installed plugins it may load (comma-separated, ``""`` for none; the
    default ``None`` leaves the variable as the test's environment has it, so every installed plugin loads).
    ``args`` go after ``run``, e.g. ``"--role", "worker"``.
    """

    def __init__(self, config: Path, *args: str, plugins: str | None = None) -> None:
        env = dict(os.environ)
        if plugins is not None:
            env["HUB_LOAD_PLUGINS"] = plugins
        self.process = subprocess.Popen(
            [HUB, "run", *args, "-c", str(config)],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip())

    def log(self, last: int = 30) -> str:
        """The last ``last`` lines it logged, for an assertion's message."""
        return "\n".join(self.lines[-last:])

    def alive(self) -> bool:
        return self.process.poll() is None

    def started(self) -> bool:
        """True once every plugin has started; an :class:`AssertionError` with the log if it exited before."""
        if any(RUNNING in line for line in self.lines):
            return True
        if self.process.poll() is not None:
            raise AssertionError(f"hub run exited with {self.process.returncode} before it ran:\n{self.log()}")
        return False

    def wait_running(self, timeout: float = 60) -> None:
        """Block until :meth:`started` (for tests that drive the hub from threads, without an event loop)."""
        deadline = time.monotonic() + timeout
        while not self._started_by(deadline, timeout):
            time.sleep(0.05)

    async def running(self, timeout: float = 60) -> None:
        """Wait until :meth:`started` without holding up the test's event loop."""
        deadline = time.monotonic() + timeout
        while not self._started_by(deadline, timeout):
            await asyncio.sleep(0.05)

    def _started_by(self, deadline: float, timeout: float) -> bool:
        if self.started():
            return True
        if time.monotonic() > deadline:
            raise AssertionError(f"hub run did not start within {timeout:.0f} s:\n{self.log()}")
        return False

    def memory(self) -> tuple[float, float]:
        """(resident MiB now, peak resident MiB) of the process, from /proc/PID/status (Linux)."""
        fields = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            fields[key] = value
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer ends it: nothing is flushed, nothing acknowledged."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM and wait (SIGKILL after ``timeout`` s): a graceful stop commits and acknowledges what it received.

        Returns the exit code (0 for a clean stop); stopping a process that already ended only returns its code.
        """
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=10)
        return self.process.returncode
