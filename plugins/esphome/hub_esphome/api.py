"""``/api/esphome/…``: the defined nodes and where each stands, validate and compile jobs, their live log, the binary.

Every route needs a bearer token; the two that start something are POSTs, so
the http plugin's audit trail records who started which job.  The log of a
job streams as chunked ``text/plain``: the lines so far, then each line as
ESPHome writes it, until the job ends (a client that reads it with ``fetch``
and a ``ReadableStream``, or ``curl -N``, sees the compile as it happens).
"""

from __future__ import annotations

import asyncio
import functools
import re
from pathlib import Path
from typing import Any

import voluptuous as vol
from aiohttp import web

from hub.web import ApiError, Route, json_response, path_param, read_query
from hub.web import operation as _operation

from .builds import file_sha256
from .firmware import FirmwareError
from .jobs import JobBusy
from .runtime import Provisioning
from .status import build_of

operation = functools.partial(_operation, tag="esphome")
"""An OpenAPI operation of the ``esphome`` tag (see :func:`hub.web.operation`)."""

_NO_QUERY = vol.Schema({})
_JOBS_QUERY = vol.Schema({vol.Optional("node"): vol.All(str, vol.Length(max=200))})
_SAFE_FILE = re.compile(r"[^A-Za-z0-9._-]")

NODE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "file", "node_id", "seen", "status", "validated", "compiled", "up_to_date", "job"],
    "properties": {
        "name": {"type": "string", "nullable": True},
        "file": {"type": "string"},
        "friendly_name": {"type": "string", "nullable": True},
        "area": {"type": "string", "nullable": True},
        "mac": {"type": "string", "nullable": True},
        "node_id": {"type": "string", "nullable": True},
        "seen": {"type": "boolean"},
        "status": {"type": "string", "nullable": True},
        "running_version": {"type": "string", "nullable": True},
        "validated": {"type": "object", "nullable": True},
        "compiled": {"type": "object", "nullable": True},
        "up_to_date": {"type": "boolean", "nullable": True},
        "job": {"type": "object", "nullable": True},
    },
}
JOB_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "kind", "node", "status", "created_at"],
    "properties": {
        "id": {"type": "string"},
        "kind": {"type": "string", "enum": ["validate", "compile"]},
        "node": {"type": "string"},
        "file": {"type": "string"},
        "by": {"type": "string", "nullable": True},
        "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed"]},
        "created_at": {"type": "number"},
        "started_at": {"type": "number", "nullable": True},
        "finished_at": {"type": "number", "nullable": True},
        "returncode": {"type": "integer", "nullable": True},
        "problem": {"type": "string", "nullable": True},
        "build": {"type": "object", "nullable": True},
        "lines": {"type": "integer"},
    },
}


class ProvisioningApi:
    """The routes of one hub's :class:`~.runtime.Provisioning`."""

    def __init__(self, provisioning: Provisioning) -> None:
        self._p = provisioning

    def routes(self) -> list[Route]:
        name = path_param("name", "the node's ESPHome name (substitutions: name:)")
        job_id = path_param("job_id", "the job's id")
        return [
            Route(
                "GET",
                "/api/esphome/nodes",
                self.list_nodes,
                doc=operation(
                    "Defined ESPHome nodes and where each stands",
                    ok={
                        "type": "object",
                        "properties": {
                            "nodes": {"type": "array", "items": NODE_SCHEMA},
                            "firmware_dir": {"type": "string"},
                            "esphome": {"type": "object"},
                        },
                    },
                ),
            ),
            Route(
                "GET",
                "/api/esphome/nodes/{name}",
                self.get_node,
                doc=operation("One defined node", ok=NODE_SCHEMA, params=[name]),
            ),
            *(
                Route(
                    "POST",
                    f"/api/esphome/nodes/{{name}}/{kind}",
                    self._starter(kind),
                    doc=operation(
                        f"Start `esphome {'config' if kind == 'validate' else 'compile'}` on a node",
                        description="202 with the job; follow its output at /api/esphome/jobs/{job_id}/log. 409 "
                        "`job_running` while the node has a job; 503 `esphome_unavailable` without ESPHome, "
                        "409 `no_secrets` without secrets.yaml.",
                        ok=JOB_SCHEMA,
                        status=202,
                        params=[name],
                        errors=(409, 503),
                    ),
                )
                for kind in ("validate", "compile")
            ),
            Route(
                "GET",
                "/api/esphome/nodes/{name}/firmware",
                self.download,
                doc=operation(
                    "The compiled binary of a node",
                    description="404 `not_compiled` before a compile; 409 `binary_changed` when the file is no "
                    "longer what the hub compiled (rebuilt outside the hub: compile again).",
                    ok={"type": "string", "format": "binary"},
                    media="application/octet-stream",
                    params=[name],
                    errors=(409,),
                ),
            ),
            Route(
                "GET",
                "/api/esphome/jobs",
                self.list_jobs,
                doc=operation(
                    "Recent and running jobs, newest first",
                    ok={"type": "object", "properties": {"jobs": {"type": "array", "items": JOB_SCHEMA}}},
                    params=[
                        {
                            "name": "node",
                            "in": "query",
                            "required": False,
                            "description": "only this node's jobs",
                            "schema": {"type": "string"},
                        }
                    ],
                ),
            ),
            Route(
                "GET",
                "/api/esphome/jobs/{job_id}",
                self.get_job,
                doc=operation("One job", ok=JOB_SCHEMA, params=[job_id]),
            ),
            Route(
                "GET",
                "/api/esphome/jobs/{job_id}/log",
                self.job_log,
                doc=operation(
                    "A job's output, streamed live",
                    description="chunked text/plain: the lines so far, then each new line, until the job ends",
                    ok={"type": "string"},
                    media="text/plain",
                    params=[job_id],
                ),
            ),
        ]

    # --- nodes --------------------------------------------------------------------------------
    async def list_nodes(self, request: web.Request) -> web.Response:
        read_query(request, _NO_QUERY)  # takes no filter: a misspelt one must not list everything
        rows = self._p.rows()
        return json_response(
            {"nodes": rows, "firmware_dir": str(self._p.directory), "esphome": self._p.executable_status()}
        )

    async def get_node(self, request: web.Request) -> web.Response:
        name = self._name(request)
        return json_response(self._p.rows({name})[0])

    def _name(self, request: web.Request) -> str:
        name = request.match_info["name"]
        self._p.sync()
        if name not in self._p.defined.defined:
            raise ApiError(f"no node file in {self._p.directory} defines {name!r}", status=404, code="node_not_defined")
        return name

    def _starter(self, kind: str):  # noqa: ANN202 - a handler
        async def start(request: web.Request) -> web.Response:
            node_file = self._p.node_file(self._name(request))
            try:
                job = self._p.jobs.start(kind, node_file)
            except JobBusy as err:
                raise ApiError(str(err), status=409, code="job_running") from None
            except FirmwareError as err:
                missing_secrets = "secrets.yaml" in str(err)
                raise ApiError(
                    str(err),
                    status=409 if missing_secrets else 503,
                    code="no_secrets" if missing_secrets else "esphome_unavailable",
                ) from None
            return json_response(job.as_dict(), status=202)

        start.__name__ = f"start_{kind}"
        return start

    async def download(self, request: web.Request) -> web.StreamResponse:
        node_file = self._p.node_file(self._name(request))
        build = build_of(node_file)
        if build is None:
            raise ApiError(
                f"{node_file.name} has not been compiled (or its binary is gone)", status=404, code="not_compiled"
            )
        binary = Path(build.binary)
        if await asyncio.to_thread(file_sha256, binary) != build.sha256:
            raise ApiError(
                f"{binary} is no longer what the hub compiled: compile again", status=409, code="binary_changed"
            )
        suffix = ".bin" if binary.suffix == ".bin" else ""
        filename = _SAFE_FILE.sub("_", f"{build.name}-{build.version or 'build'}{suffix}")
        return web.FileResponse(
            binary,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Disposition": f'attachment; filename="{filename}"',
                "X-Firmware-Version": build.version or "",
                "X-Firmware-SHA256": build.sha256,
                "Cache-Control": "no-store",
            },
        )

    # --- jobs ---------------------------------------------------------------------------------
    async def list_jobs(self, request: web.Request) -> web.Response:
        node = read_query(request, _JOBS_QUERY).get("node")
        return json_response({"jobs": [job.as_dict() for job in self._p.jobs.jobs(node)]})

    def _job(self, request: web.Request):  # noqa: ANN202
        job = self._p.jobs.get(request.match_info["job_id"])
        if job is None:
            raise ApiError(f"no job {request.match_info['job_id'][:40]!r}", status=404, code="job_not_found")
        return job

    async def get_job(self, request: web.Request) -> web.Response:
        return json_response(self._job(request).as_dict())

    async def job_log(self, request: web.Request) -> web.StreamResponse:
        job = self._job(request)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/plain; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            }
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        async for batch in job.follow():
            await response.write(("\n".join(batch) + "\n").encode())
        await response.write_eof()
        return response
