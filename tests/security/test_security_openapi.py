"""schemathesis against the OpenAPI document of a real ``hub run``: first without a token, then with one.

Without a token every operation that is not public must answer 401 (mutating
or not), no public one may answer 5xx, and afterwards everything the hub keeps
(every database table, auth.json, the firmware folders) must be byte for byte
what it was.  With the owner's token no operation may answer 5xx, with a status
code, content type or body the document does not describe.

tests/http/test_http_openapi.py runs the same checks in-process (storage, http,
ota); this one covers every installed plugin as ``hub run`` loads them, over a
real socket.  Examples per operation are bounded so the run takes well under a
minute; the seed is fixed (derandomized), so CI sees the same requests each time.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import hypothesis
import hypothesis.errors
import pytest
import requests
import schemathesis
from running_hub import RunningHub
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from hub.plugins.http.audit import ANONYMOUS_PER_MINUTE
from hub.testing import TEST_PASSWORD

SCALE = max(1, int(os.environ.get("HUB_FUZZ_EXAMPLES", "1")))
UNAUTHENTICATED_EXAMPLES = 6 * SCALE
AUTHENTICATED_EXAMPLES = 10 * SCALE


def refused_without_a_token(ctx: Any, response: Any, case: schemathesis.Case) -> None:
    """An operation that needs a token answers 401 to a request without one, whatever else is wrong with it."""
    if case.operation.definition.raw.get("security") == []:
        return
    if response.status_code in (400, 413, 414, 431) and "json" not in response.headers.get("Content-Type", [""])[0]:
        return  # refused by the HTTP parser (a request line over 8 KiB) before any handler: nothing reached the app
    assert response.status_code == 401, (
        f"{case.method} {case.formatted_path} without a token answered {response.status_code}: {response.text[:200]}"
    )


def _run(operation: Any, mode: GenerationMode, examples: int, checks: list[Any], headers: dict[str, str], url: str):
    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        if not headers and case.headers:
            case.headers.pop("Authorization", None)  # no token at all: not even a generated one
        sent = headers
        if mode is GenerationMode.NEGATIVE and "Authorization" in (case.headers or {}):
            sent = {}  # a negative case testing a bad Authorization header keeps its own
        case.call_and_validate(base_url=url, headers=sent, checks=checks, timeout=15)

    run()


def _schemathesis(document: dict[str, Any], url: str, headers: dict[str, str], examples: int, fresh_token) -> list[str]:
    """Every operation, positive and negative; the failures found (each operation's first)."""
    schema = schemathesis.openapi.from_dict(document)
    authenticated = bool(headers)
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if authenticated:
            headers = fresh_token(headers)  # an earlier operation may have signed this token out
            positive = [not_a_server_error, status_code_conformance, content_type_conformance]
            positive.append(response_schema_conformance)
            negative = [not_a_server_error, status_code_conformance, negative_data_rejection]
        else:
            positive = negative = [not_a_server_error, refused_without_a_token]
        for mode, checks in ((GenerationMode.POSITIVE, positive), (GenerationMode.NEGATIVE, negative)):
            try:
                _run(operation, mode, examples, checks, headers, url)
            except hypothesis.errors.Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing to make invalid
            except Exception as err:  # noqa: BLE001 - collect every operation's failure, not just the first
                failures.append(f"{operation.label} [{mode.value}{'' if authenticated else ', no token'}]: {err}")
    return failures


@pytest.fixture
async def running_hub(tmp_path: Path) -> AsyncIterator[RunningHub]:
    hub = RunningHub(tmp_path)
    try:
        yield await hub.start()
    finally:
        assert await hub.stop() == 0, hub.log()


async def test_no_token_changes_nothing_and_no_request_breaks_the_api(running_hub: RunningHub) -> None:
    hub = running_hub
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{hub.url}/api/openapi.json", headers=hub.headers) as response:
            document = await response.json()
    operations = sum(len(ops) for ops in document["paths"].values())
    assert operations >= 40  # every plugin's routes are in it (core, esphome, ota)

    before = hub.snapshot()
    started = time.monotonic()
    failures = await asyncio.to_thread(_schemathesis, document, hub.url, {}, UNAUTHENTICATED_EXAMPLES, None)
    assert not failures, "\n\n".join(failures)
    minutes = (time.monotonic() - started) / 60
    after = hub.snapshot()
    # The audit trail records refused anonymous requests, at a bounded rate (hub/plugins/http/audit.py):
    # only such records may appear, and no more than the rate allows; everything else must be untouched.
    audit = after["tables"].pop("http_audit")
    assert before["tables"].pop("http_audit") == []
    rows = [eval(row) for row in audit]  # noqa: S307 - our own repr() of sqlite rows
    assert all(row[2] is None and row[3] is None and row[6] >= 400 for row in rows), rows[:5]
    assert 0 < len(rows) <= ANONYMOUS_PER_MINUTE * (1 + minutes) + 1
    changed = {
        name: {"before": value, "after": after[kind].get(name)}
        for kind in ("tables", "files")
        for name, value in {**before[kind], **{k: None for k in after[kind] if k not in before[kind]}}.items()
        if after[kind].get(name) != value
    }
    assert not changed, f"requests without a token changed what the hub keeps: {changed}"

    def fresh_token(headers: dict[str, str]) -> dict[str, str]:
        if requests.get(f"{hub.url}/api/auth/me", headers=headers, timeout=10).status_code == 200:
            return headers
        login = requests.post(
            f"{hub.url}/api/auth/login", json={"username": "owner", "password": TEST_PASSWORD}, timeout=30
        )
        assert login.status_code == 200, login.text
        return {"Authorization": f"Bearer {login.json()['access_token']}"}

    failures = await asyncio.to_thread(
        _schemathesis, document, hub.url, hub.headers, AUTHENTICATED_EXAMPLES, fresh_token
    )
    assert not failures, "\n\n".join(failures)
