"""Who the code running right now acts for: the answer to "who did this?" for anything a plugin records.

A context variable, so it follows the request (or CLI command) through every
``await`` and into tasks created meanwhile, without being passed along: the
``http`` plugin sets it to the signed-in user for each authenticated request, so
a plugin's route handler can record who uploaded, started or cancelled
something with :func:`current_actor` without importing the http plugin.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_ACTOR: ContextVar[str | None] = ContextVar("hub_actor", default=None)


def current_actor() -> str | None:
    """The user (or ``cli:<os user>``, a plugin's name…) the running code acts for; None outside any."""
    return _ACTOR.get()


@contextmanager
def acting_as(actor: str) -> Iterator[None]:
    """Run the block on behalf of ``actor`` (what :func:`current_actor` returns inside it)."""
    token = _ACTOR.set(actor)
    try:
        yield
    finally:
        _ACTOR.reset(token)
