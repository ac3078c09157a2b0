"""Where each defined node stands: defined, validated, compiled, known to the hub, online, running which version.

One row per node file, put together from the file, the records of
:mod:`.builds`, the registry and the job in progress.  A record whose source
digest differs from the YAML's today is *outdated*.  ``up_to_date`` compares
what the node runs with what was compiled: the version it reports (its project
version, else the ESPHome version) and, when its discovery ``sw_version``
carries ESPHome's ``(config hash 0x…)``, that hash too; None when either side
is unknown.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hub import Node

from .builds import Build, SourceDigests, read_build, read_validation
from .defined import PLACEHOLDER_PREFIX
from .firmware import NodeFile
from .jobs import Job

_CONFIG_HASH = re.compile(r"config hash (0x[0-9a-fA-F]+)")


def build_of(node_file: NodeFile) -> Build | None:
    return read_build(node_file.build_path) if node_file.build_path is not None else None


def node_row(
    node_file: NodeFile,
    node: Node | None,
    digests: SourceDigests,
    shared: list[Path],
    job: Job | None,
) -> dict[str, Any]:
    """The row of one node file (see the module docstring)."""
    name = node_file.name
    digest = digests.digest(node_file.path, shared)
    validation = read_validation(digests.directory, name) if name else None
    build = build_of(node_file) if name else None
    seen = node is not None and not node.node_id.startswith(PLACEHOLDER_PREFIX)
    running = node.firmware_version if node is not None else None
    return {
        "name": name,
        "file": node_file.path.name,
        "friendly_name": node_file.friendly_name,
        "area": node_file.area,
        "mac": node_file.mac,
        "node_id": node.node_id if node is not None else None,
        "seen": seen,
        "status": node.status if node is not None else None,
        "running_version": running,
        "validated": None
        if validation is None
        else {
            "ok": bool(validation.get("ok")),
            "at": validation.get("at"),
            "by": validation.get("by"),
            "outdated": validation.get("source_digest") != digest,
        },
        "compiled": None
        if build is None
        else {
            "version": build.version,
            "esphome_version": build.esphome_version,
            "config_hash": build.config_hash,
            "size": build.size,
            "sha256": build.sha256,
            "compiled_at": build.compiled_at,
            "compiled_by": build.compiled_by,
            "factory": build.factory_binary is not None,
            "outdated": build.source_digest != digest,
        },
        "up_to_date": up_to_date(node, build) if seen else None,
        "job": job.as_dict() if job is not None else None,
    }


def up_to_date(node: Node | None, build: Build | None) -> bool | None:
    """Does the node run what was compiled?  None when the hub cannot tell."""
    if node is None or build is None or node.firmware_version is None or build.version is None:
        return None
    if node.firmware_version != build.version:
        return False
    software = node.attributes.get("sw_version")
    match = _CONFIG_HASH.search(software) if isinstance(software, str) else None
    if match is not None and build.config_hash is not None:
        return match.group(1).lower() == build.config_hash
    return True
