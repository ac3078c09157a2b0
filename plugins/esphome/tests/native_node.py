"""A real ESPHome node for the native API tests: built for the ``host`` platform, run in a network namespace.

**Building.** ``nodes/native_host.yaml`` is compiled with the ESPHome of
``scripts/esphome-env`` (``HUB_ESPHOME``, else ``esphome`` on PATH) for the host
platform: the system g++, offline.  The program is cached under
``~/.cache/hub/esphome-host/<key>/program``, the key being a hash of the YAML and
the ESPHome version, so a machine compiles it once (a lock keeps two test runs from
compiling it at the same time).

**Running.** The node binds its API port on every address of its network, so it
runs in a network namespace of its own that has nothing but loopback
(``unshare --net``, as root): its port is on no network, cannot clash with anything
(every node listens on 6053 in its own namespace), and mDNS is off in the YAML all
the same.  The hub, in the test process, reaches it through a relay: a listening
socket on 127.0.0.1 (a free port) whose connections are carried to 127.0.0.1:6053
inside the node's namespace by sockets made there (a thread that entered the
namespace with ``setns`` makes them).  The relay only copies bytes, in both
directions, and closes one side when the other closes; the hub speaks the real
native API to the real node, and a node killed with SIGKILL closes its sockets, so
the hub's connection ends as it would with a real board's TCP reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hub.testing import unavailable, wait_until

NODE_YAML = Path(__file__).with_name("nodes") / "native_host.yaml"
NODE_NAME = "hub-native-test"
NODE_MAC = "02:4e:41:54:49:56"
API_PORT = 6053
CLONE_NEWNET = 0x40000000


def esphome_executable() -> Path:
    """The ESPHome command (``HUB_ESPHOME``, else PATH); skips (or fails under HUB_REQUIRE_SERVICES=1) without it."""
    configured = os.environ.get("HUB_ESPHOME")
    found = configured or shutil.which("esphome")
    if found and Path(found).is_file() and os.access(found, os.X_OK):
        return Path(found)
    if configured:
        unavailable(f"HUB_ESPHOME={configured!r} is not an executable")
    unavailable(
        "the esphome executable is not available: run scripts/esphome-env and set HUB_ESPHOME to what it prints"
    )


def require_network_namespace() -> None:
    """The node runs only in a namespace of its own; without the right to make one, skip (or fail in CI)."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        unavailable("running the ESPHome host node needs unshare and ip (util-linux, iproute2)")
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        unavailable(
            "running the ESPHome host node needs a network namespace of its own (root or CAP_SYS_ADMIN), "
            f"so its API port is never on the network: {probe.stderr.decode(errors='replace').strip()}"
        )


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hub" / "esphome-host"


def build(esphome: Path, yaml: Path = NODE_YAML) -> Path:
    """The node's program, compiled now or taken from the cache (see the module docstring)."""
    version = subprocess.run([esphome, "version"], capture_output=True, text=True, check=True).stdout.strip()
    key = hashlib.sha256(yaml.read_bytes() + version.encode()).hexdigest()[:16]
    target = cache_dir() / key / "program"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test run may be compiling the same node right now
        if target.is_file():
            return target
        with tempfile.TemporaryDirectory(prefix="hub-esphome-host-") as work:
            copy = Path(work) / yaml.name
            shutil.copy(yaml, copy)
            log = Path(work) / "compile.log"
            with open(log, "wb") as out:
                done = subprocess.run([esphome, "compile", copy.name], cwd=work, stdout=out, stderr=subprocess.STDOUT)
            if done.returncode != 0:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"esphome compile {yaml.name} failed ({done.returncode}):\n{tail}")
            program = Path(work) / ".esphome" / "build" / NODE_NAME / ".pioenvs" / NODE_NAME / "program"
            staged = target.with_suffix(".tmp")
            shutil.copy(program, staged)
            staged.replace(target)
    return target


def _enter_namespace(pid: int) -> None:
    """Move the calling thread (only it) into the network namespace of process ``pid``."""
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    try:
        if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into the namespace of {pid}")
    finally:
        os.close(fd)


def _socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    return sock


class HostNode:
    """The node's process, its namespace, and the relay the hub connects to (``port`` on 127.0.0.1)."""

    def __init__(self, program: Path, workdir: Path) -> None:
        self.program = program
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self._namespace: ThreadPoolExecutor | None = None
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self.port = 0
        self.starts = 0

    @property
    def log(self) -> Path:
        return self.workdir / f"node-{self.starts}.log"

    async def start(self) -> None:
        """Start the node (again) in a fresh namespace; the relay keeps its port across restarts."""
        if self._server is None:
            self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]
        self.starts += 1
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$0"', str(self.program)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "ESPHOME_PREFDIR": str(self.workdir / "prefs")},
                start_new_session=True,
            )
        process = self.process
        await wait_until(
            lambda: process.poll() is not None or "setup() finished" in self.log.read_text(errors="replace"),
            timeout=15,
            message="the ESPHome node to finish its setup",
        )
        assert process.poll() is None, f"the node exited: {self.log.read_text(errors='replace')[-2000:]}"
        if self._namespace is not None:
            self._namespace.shutdown(wait=False)
        self._namespace = ThreadPoolExecutor(1, initializer=_enter_namespace, initargs=(process.pid,))

    def freeze(self, frozen: bool = True) -> None:
        """SIGSTOP (or SIGCONT): the node stops answering but its sockets stay open, as with a power cut over Wi-Fi."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP if frozen else signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL, as a power cut would end it: no goodbye to the hub."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)  # also ends a frozen one
            self.process.wait(10)

    async def close(self) -> None:
        self.kill()
        if self._server is not None:
            self._server.close()
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        if self._namespace is not None:
            self._namespace.shutdown(wait=False)

    # --- the relay ----------------------------------------------------------------------
    async def _relay(self, hub_reader: asyncio.StreamReader, hub_writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        try:
            assert self._namespace is not None
            sock = await loop.run_in_executor(self._namespace, _socket)
            try:
                await loop.sock_connect(sock, ("127.0.0.1", API_PORT))
            except OSError:
                sock.close()
                raise
            node_reader, node_writer = await asyncio.open_connection(sock=sock)
        except (OSError, RuntimeError):  # the node is gone: the hub's attempt fails as a refused connection would
            hub_writer.close()
            return
        pipes = [
            asyncio.ensure_future(self._pipe(hub_reader, node_writer)),
            asyncio.ensure_future(self._pipe(node_reader, hub_writer)),
        ]
        self._pipes.update(pipes)
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pipe in pipes:
                pipe.cancel()
                self._pipes.discard(pipe)
            for writer in (hub_writer, node_writer):
                writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
