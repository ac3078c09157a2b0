"""What a simulated node does with the commands the hub sends it, as good firmware would.

* Every ``message_id`` is executed at most once.  A redelivered command (a
  persistent session replaying it, the hub resending after a lost PUBACK) gets
  the first answer again and nothing is executed twice: the guard against the
  REBOOT loop ESP32 fleets are known for.
* Each command is answered ``received``, then ``ok`` or ``error`` with a reason.
* ``REBOOT`` answers ``ok``, then shuts down gracefully and boots again.
  ``STATUS_REQUEST`` publishes telemetry at once.  ``FIRMWARE_UPDATE``
  downloads ``url``, checks ``sha256`` (and ``size``) when given, and reboots
  into ``version``.  Anything else is answered ``error: unknown action``.

How a node fares with updates is its :class:`OtaBehaviour`: by default every
update works; a test or benchmark can make a share of them fail in each of the
ways real fleets see (an error, power lost mid-download, a rollback to the old
firmware), or break the download halfway so the node resumes it with a Range
request.  Each attempt draws its fate from the node's own seeded RNG.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

if TYPE_CHECKING:
    from .node import SimulatedNode

REMEMBERED_IDS = 256
"""Executed message ids a node remembers (firmware keeps a small ring of them)."""
DOWNLOAD_TIMEOUT = 60.0
DOWNLOAD_CHUNK = 16384

Answer = tuple[str, str | None]

WORKS = "works"
FAIL = "fail"
OFFLINE = "offline"
ROLLBACK = "rollback"
INTERRUPT = "interrupt"


@dataclass(frozen=True)
class OtaBehaviour:
    """Shares (0–1, at most 1 together) of FIRMWARE_UPDATE attempts that go each way; the rest work."""

    fail: float = 0.0
    """Download, then answer ``error: flash write failed`` and keep running the old firmware."""
    offline: float = 0.0
    """Lose power halfway through the download (the broker publishes the Will), boot the old firmware, report."""
    rollback: float = 0.0
    """Install, answer ``ok``, reboot, and come back on the old firmware (the bootloader rolled back)."""
    interrupt: float = 0.0
    """The download breaks halfway; resume it with ``Range: bytes=N-`` on the same URL, then carry on normally."""
    reboot_downtime: float = 0.5
    """Seconds between going down and booting again after an update (or a power loss mid-download)."""

    def __post_init__(self) -> None:
        shares = (self.fail, self.offline, self.rollback, self.interrupt)
        if any(not 0.0 <= share <= 1.0 for share in shares) or sum(shares) > 1.0 + 1e-9:
            raise ValueError(f"OTA shares must each be 0..1 and add up to at most 1, got {shares}")

    def draw(self, rng: Any) -> str:
        """The fate of one attempt."""
        roll = rng.random()
        for fate, share in (
            (FAIL, self.fail),
            (OFFLINE, self.offline),
            (ROLLBACK, self.rollback),
            (INTERRUPT, self.interrupt),
        ):
            if roll < share:
                return fate
            roll -= share
        return WORKS


class CommandExecutor:
    """Executes one simulated node's commands; see the module docstring."""

    def __init__(self, node: SimulatedNode) -> None:
        self._node = node
        self._answers: OrderedDict[str, Answer | None] = OrderedDict()
        """message_id → final answer (None while executing)."""
        self._tasks: set[asyncio.Task[None]] = set()
        self.executed: list[str] = []
        """Actions carried out, in order (tests read it)."""
        self.duplicates = 0
        """Commands received again and not executed again."""
        self.resumed_downloads = 0
        """Firmware downloads that broke off and were resumed with a Range request."""

    def on_message(self, topic: str, payload: bytes) -> None:
        """A message on the node's commands topic."""
        try:
            command: Any = orjson.loads(payload)
            message_id = command["message_id"]
            action = command["action"]
        except (ValueError, TypeError, KeyError):
            return  # firmware ignores what it cannot parse
        if not isinstance(message_id, str) or not isinstance(action, str):
            return
        if message_id in self._answers:
            self.duplicates += 1
            answer = self._answers[message_id]
            if answer is not None:
                self._spawn(self._answer(message_id, *answer))
            return
        self._answers[message_id] = None
        while len(self._answers) > REMEMBERED_IDS:
            self._answers.popitem(last=False)
        self._spawn(self._execute(message_id, action, command.get("params") or {}))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _execute(self, message_id: str, action: str, params: dict[str, Any]) -> None:
        await self._answer(message_id, "received", None)
        self.executed.append(action)
        after = None
        if action == "REBOOT":
            answer: Answer | None = ("ok", None)
            after = self._node.reboot
        elif action == "STATUS_REQUEST":
            sent = await self._node.publish_telemetry()
            answer = ("ok", None) if sent else ("error", "not connected")
        elif action == "FIRMWARE_UPDATE":
            answer, after = await self._update(params)
        else:
            answer = ("error", f"unknown action {action}")
        if answer is None:
            return  # it lost power before it could answer: a new boot knows nothing of the command
        self._answers[message_id] = answer
        await self._answer(message_id, *answer)
        if after is not None:
            await after()

    async def _update(self, params: dict[str, Any]) -> tuple[Answer | None, Any]:
        """Download, verify and install; returns the answer (None: no answer at all) and what to do after it."""
        url = params.get("url")
        if not isinstance(url, str) or "version" not in params:
            return ("error", "FIRMWARE_UPDATE needs url and version"), None
        behaviour = self._node.ota_behaviour
        fate = behaviour.draw(self._node.ota_random)
        try:
            digest, size = await self._download(url, params.get("size"), fate)
        except _DownloadFailed as err:
            return ("error", f"download failed: {err}"), None
        except _PowerLost:
            await self._lose_power(behaviour.reboot_downtime)
            return None, None
        if "size" in params and size != params["size"]:
            return ("error", f"size mismatch: got {size} bytes, expected {params['size']}"), None
        if "sha256" in params and digest != params["sha256"]:
            return ("error", "sha256 mismatch"), None
        if fate == FAIL:
            return ("error", "flash write failed"), None
        version = None if fate == ROLLBACK else str(params["version"])

        async def reboot() -> None:
            await self._node.reboot(firmware_version=version, downtime=behaviour.reboot_downtime)

        return ("ok", None), reboot

    async def _download(self, url: str, expected: Any, fate: str) -> tuple[str, int]:
        """The image's SHA-256 and size; an ``offline`` or ``interrupt`` fate breaks off halfway."""
        digest = hashlib.sha256()
        size = 0
        halfway = expected // 2 if isinstance(expected, int) and expected > 1 else None
        headers: dict[str, str] = {}
        timeout = aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                for attempt in (1, 2):
                    async with session.get(url, headers=headers) as response:
                        if response.status not in (200, 206):
                            raise _DownloadFailed(f"HTTP {response.status}")
                        async for chunk in response.content.iter_chunked(DOWNLOAD_CHUNK):
                            if attempt == 1 and halfway is not None and size + len(chunk) > halfway:
                                if fate == OFFLINE:
                                    raise _PowerLost
                                if fate == INTERRUPT:
                                    chunk = chunk[: halfway - size]
                                    digest.update(chunk)
                                    size += len(chunk)
                                    break  # the connection drops; resume where it broke off
                            digest.update(chunk)
                            size += len(chunk)
                        else:
                            return digest.hexdigest(), size
                    headers = {"Range": f"bytes={size}-"}
                    self.resumed_downloads += 1
        except (aiohttp.ClientError, TimeoutError) as err:
            raise _DownloadFailed(str(err)) from err
        raise _DownloadFailed("the download did not complete")

    async def _lose_power(self, downtime: float) -> None:
        """Power gone mid-download: the broker publishes the Will; the old firmware boots and reports."""
        node = self._node
        node.power_loss()
        await asyncio.sleep(downtime)
        if await node.power_on():
            await node.publish_telemetry()

    async def _answer(self, message_id: str, status: str, detail: str | None) -> None:
        body: dict[str, Any] = {"message_id": message_id, "status": status}
        if detail is not None:
            body["detail"] = detail
        await self._node.publish(self._node.ack_topic, orjson.dumps(body), 1)

    async def close(self) -> None:
        """Stop whatever is still executing (the node is shutting down for good)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class _DownloadFailed(Exception):
    """The firmware could not be fetched (HTTP error, connection, timeout)."""


class _PowerLost(Exception):
    """The simulated node lost power in the middle of something."""
