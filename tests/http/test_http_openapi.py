"""/api/openapi.json matches the real endpoints, and schemathesis finds no 5xx and no undocumented answers.

schemathesis (sync, requests) runs in a worker thread against the server
running in the test's event loop; examples per operation are bounded so the
whole run takes seconds.
"""

from __future__ import annotations

import asyncio
from typing import Any

import hypothesis
import hypothesis.errors
import schemathesis
from http_helpers import OWNER_PASSWORD, Api
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from hub.core.const import REASON_MESSAGE, STATUS_ONLINE

try:  # the first-party ota plugin's endpoints (multipart upload included) are checked too when it is installed
    import hub_ota.plugin as ota_plugin
except ImportError:
    ota_plugin = None

MAX_EXAMPLES = 25
MAC = "aa:bb:cc:dd:ee:01"


async def test_document_lists_exactly_the_served_endpoints(api: Api) -> None:
    status, document = await api.call("GET", "/api/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.")
    schemathesis.openapi.from_dict(document).validate()  # against the OpenAPI 3.0 meta-schema
    documented = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    served = {(route.method, route.path) for route in api.server.routes if route.path != "/api/websocket"}
    assert documented == served
    public = {
        (method.upper(), path)
        for path, ops in document["paths"].items()
        for method, op in ops.items()
        if op.get("security") == []
    }
    assert public == {(r.method, r.path) for r in api.server.routes if not r.auth and r.path != "/api/websocket"}
    ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


POSITIVE_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
NEGATIVE_CHECKS = [not_a_server_error, status_code_conformance, negative_data_rejection]


def _check(operation: Any, mode: GenerationMode, checks: list[Any], base_url: str, headers: dict[str, str]) -> None:
    """Up to MAX_EXAMPLES generated requests of one operation, each validated by ``checks``."""

    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        # A negative case without the Authorization header is testing a missing token: adding ours would
        # turn it into a valid request (seen: a dropped empty-named query parameter plus the re-added token → 200).
        missing_token = mode is GenerationMode.NEGATIVE and "Authorization" not in (case.headers or {})
        sent = {} if missing_token else headers
        case.call_and_validate(base_url=base_url, headers=sent, checks=checks, timeout=10)

    run()


def _run_schemathesis(document: dict[str, Any], base_url: str, token: str) -> list[str]:
    """Every operation, positive and negative examples; returns the failures found."""
    schema = schemathesis.openapi.from_dict(document)
    failures: list[str] = []
    headers = {"Authorization": f"Bearer {token}"}
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode, checks in ((GenerationMode.POSITIVE, POSITIVE_CHECKS), (GenerationMode.NEGATIVE, NEGATIVE_CHECKS)):
            try:
                _check(operation, mode, checks, base_url, headers)
            except hypothesis.errors.Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # no parameter or body to make invalid
            except Exception as err:  # noqa: BLE001 - collect every operation's failures, not just the first
                failures.append(f"{operation.label} [{mode.value}]: {err}")
    return failures


async def test_schemathesis_finds_no_server_errors(make_api) -> None:
    # A huge ban threshold: generated sign-ins fail by the hundred and must not ban the test itself.
    # Storage too, so the history and command endpoints answer from a real database.
    api: Api = await make_api(
        {"login_attempts_threshold": 1_000_000},
        builtins=("hub.plugins.storage", "hub.plugins.http"),
        plugins=[(ota_plugin, "ota")] if ota_plugin is not None else [],
    )
    registry = api.hub.registry
    node = registry.get_or_register(MAC, name="probe")
    registry.ensure_entity(node, "temperature")
    registry.report_states(node, {"temperature": 20.5}, ts=api.clock())
    registry.set_status(node, STATUS_ONLINE, REASON_MESSAGE)
    _, created = await api.call("POST", "/api/auth/tokens", json={"name": "schemathesis", "password": OWNER_PASSWORD})
    _, document = await api.call("GET", "/api/openapi.json")
    failures = await asyncio.to_thread(_run_schemathesis, document, api.url, created["token"])
    assert not failures, "\n\n".join(failures)
