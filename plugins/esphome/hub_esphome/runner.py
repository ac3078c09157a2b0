"""Running the ``esphome`` executable: its output line by line as it comes, and what a failure meant.

ESPHome is a Python program: piped, its output would be block-buffered and
arrive all at once at the end, so it runs with ``PYTHONUNBUFFERED=1`` and its
stdout and stderr merged into one stream, read a line at a time.  Colour codes
are stripped (the hub shows the text in a terminal, a log and a web page).  It
runs in a session of its own, so stopping it stops the compiler processes it
started too.

A compile for ESP32 needs PlatformIO / ESP-IDF packages that ESPHome downloads
on first use.  Offline that cannot work, and ESPHome ends with a Python
traceback about name resolution; :func:`diagnose` recognises those lines and
says plainly what happened and what to do.  It ends only after a minute:
PlatformIO retries each of its two registries five times with backoff (1, 2, 4,
8, 16 s), each time failing the same name lookup.  So a compile stops ESPHome at
the first line saying a download's host name did not resolve or its network is
unreachable (``stop_when_offline``): the answer comes in seconds, and a machine
whose DNS only hiccuped compiles when asked again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

MAX_LINE: Final = 1 << 20
"""Longest output line read whole (a compiler command line can be long); longer ones are cut."""

_ANSI: Final = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

_OFFLINE_MARKERS: Final = (
    "NameResolutionError",
    "Failed to resolve",
    "Name or service not known",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "No route to host",
    "getaddrinfo failed",
    "Could not resolve host",
    "platformio.http.HTTPClientError",
    "HTTPClientError",
    "Max retries exceeded",
)
"""Lines that mean a download failed: no DNS, no route, PlatformIO's registry out of reach."""

_STOP_MARKERS: Final = (
    "NameResolutionError",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
)
"""Lines that mean no download can work now: the first one ends a compile (see the module docstring)."""

OFFLINE_MESSAGE: Final = (
    "ESPHome could not download its toolchain (the PlatformIO / ESP-IDF packages an ESP32 build needs): "
    "this machine cannot reach the internet. Compile once on a machine that can (the packages are then "
    "cached in ~/.platformio and ~/.esphome), or copy those folders here. A `host` platform node compiles "
    "offline with the system's g++."
)


@dataclass(frozen=True, slots=True)
class RunResult:
    """How the run ended: the exit code (negative: killed by that signal) and, for a failure, why."""

    returncode: int
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def clean(line: str) -> str:
    """One output line without its colour codes and line ending."""
    return _ANSI.sub("", line).rstrip("\r\n")


def diagnose(lines: Sequence[str]) -> str | None:
    """What a failed run's output says went wrong, in words, when the hub recognises it (else None)."""
    if any(marker in line for line in lines for marker in _OFFLINE_MARKERS):
        return OFFLINE_MESSAGE
    return None


async def run_esphome(
    executable: Path,
    arguments: Sequence[str],
    *,
    cwd: Path,
    on_line: Callable[[str], None],
    stop_when_offline: bool = False,
    diagnose_offline: bool = True,
) -> RunResult:
    """Run ``esphome ARGUMENTS`` in ``cwd``, calling ``on_line`` with each output line as soon as it is written.

    A failure whose output shows a network error is reported as the toolchain download it is when ESPHome builds
    (:data:`OFFLINE_MESSAGE`); an upload, whose network errors are about the device, passes
    ``diagnose_offline=False``.  With ``stop_when_offline``, the first line saying a download cannot reach its host stops the run (see the module
    docstring); its result is a failure with :data:`OFFLINE_MESSAGE`.  Cancelling the caller kills the whole
    process group (ESPHome and the compilers it started)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "ESPHOME_NO_COLOR": "1", "NO_COLOR": "1"}
    process = await asyncio.create_subprocess_exec(
        str(executable),
        *arguments,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        start_new_session=True,
        limit=MAX_LINE,
    )
    assert process.stdout is not None
    seen: list[str] = []
    try:
        while True:
            try:
                raw = await process.stdout.readline()
            except ValueError:  # a line over MAX_LINE: take what is buffered as one line
                raw = await process.stdout.read(MAX_LINE)
            if not raw:
                break
            line = clean(raw.decode("utf-8", errors="replace"))
            seen.append(line)
            if len(seen) > 400:  # only the end matters for diagnose()
                del seen[:200]
            on_line(line)
            if stop_when_offline and any(marker in line for marker in _STOP_MARKERS):
                _kill(process)
                await process.wait()
                return RunResult(process.returncode or 1, OFFLINE_MESSAGE)
        returncode = await process.wait()
    except BaseException:
        _kill(process)
        with contextlib.suppress(ProcessLookupError, asyncio.CancelledError):
            await asyncio.shield(process.wait())
        raise
    return RunResult(returncode, None if returncode == 0 or not diagnose_offline else diagnose(seen))


def _kill(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
