"""Sign-in under attack, and token issuing with many live tokens (issue #10 items 5 and 7).

    python benchmarks/auth_load.py [--sources 300] [--tokens 5000]

1. ``login``: a hub serving only the HTTP API (trusted proxy 127.0.0.1, so every attacker has its own
   ``X-Forwarded-For`` address) with an owner account. ``--sources`` addresses each send one wrong password
   (each for another username) all at once, and the owner signs in with the right one at the same moment,
   twice: from home (where they signed in before the attack) and from an address new to the hub, each
   retrying after every ``Retry-After``. Reported: how long until each was signed in, in how many tries,
   how the attackers were answered (401 checked / 429 refused), and how long the whole attack took to answer.
2. ``tokens``: an :class:`AuthManager` on an auth file in a temporary directory. ``--tokens`` access tokens are
   issued from one session (all live), then ``--tokens`` more are timed; then ``--tokens`` refreshes of a
   session are timed (with rotation each one also writes the auth file).

Prints one JSON line per part. Runs against whatever ``hub`` is importable, so the same script measures an
older checkout (``PYTHONPATH=/path/to/old/checkout``) for a before/after comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import aiohttp

from hub import DATA_HTTP_URL
from hub.plugins.http.auth.manager import AuthManager
from hub.plugins.http.auth.store import AuthStore
from hub.testing import create_user_and_token, make_hub

OWNER, PASSWORD = "owner", "correct horse battery staple"
HOME = "198.51.100.7"


async def login_under_attack(sources: int, workdir: Path) -> dict:
    config = {"hub": {"data_dir": str(workdir / "login")}, "http": {"port": 0, "trusted_proxies": ["127.0.0.1"]}}
    hub = make_hub(config, builtins=("hub.plugins.http",))
    await hub.async_start()
    try:
        await create_user_and_token(hub, OWNER, PASSWORD)
        url = hub.data[DATA_HTTP_URL] + "/api/auth/login"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

            async def guess(n: int) -> int:
                body = {"username": f"user{n}", "password": "wrong guess"}
                headers = {"X-Forwarded-For": f"10.{n // 250}.{n % 250}.1"}
                async with http.post(url, json=body, headers=headers) as response:
                    await response.read()
                    return response.status

            async def owner(address: str) -> tuple[float, int]:
                start, tries = time.perf_counter(), 0
                while True:
                    tries += 1
                    headers = {"X-Forwarded-For": address}
                    async with http.post(url, json={"username": OWNER, "password": PASSWORD}, headers=headers) as r:
                        await r.read()
                        if r.status == 200:
                            return time.perf_counter() - start, tries
                        await asyncio.sleep(float(r.headers.get("Retry-After", "1")))

            alone_seconds, _ = await owner(HOME)  # signed in from home before (the known-address lane here)
            start = time.perf_counter()
            attack = asyncio.gather(*(guess(n) for n in range(sources)))
            (home_seconds, home_tries), (new_seconds, new_tries), statuses = await asyncio.gather(
                owner(HOME), owner("192.0.2.44"), attack
            )
            attack_seconds = time.perf_counter() - start
    finally:
        await hub.async_stop()
    return {
        "part": "login",
        "sources": sources,
        "owner_alone_signed_in_s": round(alone_seconds, 3),
        "owner_from_home_signed_in_s": round(home_seconds, 3),
        "owner_from_home_tries": home_tries,
        "owner_from_new_address_signed_in_s": round(new_seconds, 3),
        "owner_from_new_address_tries": new_tries,
        "attackers_401": statuses.count(401),
        "attackers_429": statuses.count(429),
        "attack_answered_s": round(attack_seconds, 3),
    }


async def token_issuing(count: int, workdir: Path) -> dict:
    auth = AuthManager(AuthStore.in_dir(workdir / "tokens"), time.time)
    user = await auth.create_user(OWNER, PASSWORD)
    session = auth.start_session(user)
    root_id = next(iter(auth.store.tokens))
    for _ in range(count):  # the live tokens already there
        auth._issue_access(user.id, root_id)
    start = time.perf_counter()
    for _ in range(count):
        auth._issue_access(user.id, root_id)
    issue_seconds = time.perf_counter() - start
    refresh_token = session["refresh_token"]
    start = time.perf_counter()
    for _ in range(count):
        answer = auth.refresh(refresh_token, "127.0.0.1")
        refresh_token = answer.get("refresh_token", refresh_token)  # rotated where refresh tokens rotate
    refresh_seconds = time.perf_counter() - start
    return {
        "part": "tokens",
        "live_tokens_before": count,
        "issues": count,
        "issue_total_s": round(issue_seconds, 3),
        "issue_mean_us": round(issue_seconds / count * 1e6, 1),
        "refreshes": count,
        "refresh_total_s": round(refresh_seconds, 3),
        "refresh_mean_ms": round(refresh_seconds / count * 1e3, 3),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=300)
    parser.add_argument("--tokens", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hub-auth-bench-") as directory:
        print(json.dumps(await login_under_attack(args.sources, Path(directory))), flush=True)
        print(json.dumps(await token_issuing(args.tokens, Path(directory))), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
