"""The one-time onboarding link, printed where the user will see it: last, framed, once start-up is done.

``hub run --demo 150`` registers 150 nodes in the second after start, one log line
each; a link printed at start scrolled out of view at once.  So the link is printed
after the hub has started *and* node registrations have gone quiet for a moment
(at most :data:`MAX_WAIT` seconds after start), framed so it stands out from the
log around it.  The token itself is valid from the start: only the printing waits.
"""

from __future__ import annotations

import asyncio
import logging

from hub import EVENT_HUB_STARTED, EVENT_NODE_REGISTERED, Event, Hub

_LOGGER = logging.getLogger("hub.plugins.http")

QUIET = 1.0
"""Seconds without a node registering that count as start-up being over."""
MAX_WAIT = 10.0
RULE = "=" * 72


def onboarding_message(url: str, token: str, lifetime_minutes: int) -> str:
    """The framed text (its own lines, so the link is never wrapped into a sentence)."""
    return "\n".join(
        (
            f"No user exists yet. Create the owner account here (the link works once, for {lifetime_minutes} min):",
            RULE,
            f"  {url}/onboarding#token={token}",
            RULE,
            "(or POST /api/onboarding with this token, or run `hub user create --username NAME`)",
        )
    )


class OnboardingAnnouncer:
    """Prints :func:`onboarding_message` once the hub started and registrations went quiet."""

    def __init__(self, hub: Hub, message: str) -> None:
        self._hub = hub
        self._message = message
        self._last_registration = 0.0
        self._unlisten = [
            hub.bus.listen(EVENT_HUB_STARTED, self._on_started),
            hub.bus.listen(EVENT_NODE_REGISTERED, self._on_registered),
        ]
        self._task: asyncio.Task[None] | None = None

    def _on_registered(self, _event: Event) -> None:
        self._last_registration = asyncio.get_running_loop().time()

    def _on_started(self, _event: Event) -> None:
        if self._task is None:
            self._task = self._hub.create_task(self._announce(), "http:onboarding-link")

    async def _announce(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MAX_WAIT
        self._last_registration = max(self._last_registration, loop.time() - QUIET / 2)
        while loop.time() < deadline and loop.time() - self._last_registration < QUIET:
            await asyncio.sleep(QUIET / 4)
        self.close()
        _LOGGER.warning("%s", self._message)

    def close(self) -> None:
        """Stop listening (the hub stops, or the link was printed)."""
        for unlisten in self._unlisten:
            unlisten()
        self._unlisten = []
