"""Names for sign-in sessions: which browser on which system, from the request's User-Agent.

The tokens page lists sessions so a user can tell "my phone" from "the laptop I lent
out" and revoke the right one; "sign-in" on every row told them nothing.  The
parsing is ua-parser's (Browserscope's rules); the first call compiles its rules,
a fraction of a second, so callers run it off the event loop.
"""

from __future__ import annotations

from ua_parser import parse

UNKNOWN = "unknown client"
MAX_LENGTH = 100


def describe_client(user_agent: str) -> str:
    """``Chrome 140 on Linux``, ``Mobile Safari 17 on iOS (iPhone)``, ``curl 8``; ``unknown client`` for none."""
    if not user_agent.strip():
        return UNKNOWN
    result = parse(user_agent[:512])
    browser = result.user_agent
    name = browser.family if browser and browser.family != "Other" else ""
    if name and browser.major:
        name = f"{name} {browser.major}"
    system = result.os.family if result.os and result.os.family != "Other" else ""
    device = result.device.family if result.device and result.device.family not in ("Other", "Spider") else ""
    if system and device and device != system and not device.startswith("Generic"):
        system = f"{system} ({device})"
    if not name:
        return (f"a browser on {system}" if system else UNKNOWN)[:MAX_LENGTH]
    return (f"{name} on {system}" if system else name)[:MAX_LENGTH]
