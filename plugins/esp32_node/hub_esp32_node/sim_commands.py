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
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

if TYPE_CHECKING:
    from .simulator import SimulatedNode

REMEMBERED_IDS = 256
"""Executed message ids a node remembers (firmware keeps a small ring of them)."""
DOWNLOAD_TIMEOUT = 60.0

Answer = tuple[str, str | None]


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
            answer: Answer = ("ok", None)
            after = self._node.reboot
        elif action == "STATUS_REQUEST":
            sent = await self._node.publish_telemetry()
            answer = ("ok", None) if sent else ("error", "not connected")
        elif action == "FIRMWARE_UPDATE":
            answer = await self._update(params)
            if answer[0] == "ok":
                version = str(params["version"])
                after = lambda: self._node.reboot(firmware_version=version)  # noqa: E731
        else:
            answer = ("error", f"unknown action {action}")
        self._answers[message_id] = answer
        await self._answer(message_id, *answer)
        if after is not None:
            await after()

    async def _update(self, params: dict[str, Any]) -> Answer:
        url = params.get("url")
        if not isinstance(url, str) or "version" not in params:
            return ("error", "FIRMWARE_UPDATE needs url and version")
        digest = hashlib.sha256()
        size = 0
        try:
            timeout = aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT)
            async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
                if response.status != 200:
                    return ("error", f"download failed: HTTP {response.status}")
                async for chunk in response.content.iter_chunked(16384):
                    digest.update(chunk)
                    size += len(chunk)
        except (aiohttp.ClientError, TimeoutError) as err:
            return ("error", f"download failed: {err}")
        if "size" in params and size != params["size"]:
            return ("error", f"size mismatch: got {size} bytes, expected {params['size']}")
        if "sha256" in params and digest.hexdigest() != params["sha256"]:
            return ("error", "sha256 mismatch")
        return ("ok", None)

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
