"""Validating and compiling one node: ESPHome run in the firmware folder, its output handed on line by line.

Shared by ``hub esphome validate|compile`` (which print each line as it
comes) and the HTTP API's jobs (which keep the lines for the page that streams
them).  Both leave the same records (:mod:`.builds`), so the command line and
the dashboard see each other's results.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .builds import (
    Build,
    CompileOutput,
    SourceDigests,
    built_project_version,
    file_sha256,
    find_binary,
    find_factory_binary,
    write_build,
    write_validation,
)
from .firmware import FirmwareError, NodeFile, find_executable
from .runner import run_esphome
from .update_url import substitution_arguments

if TYPE_CHECKING:
    from hub.core.services import ServiceRegistry

OnLine = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a validate or compile ended; ``problem`` says why it failed when the hub can tell."""

    ok: bool
    returncode: int
    problem: str | None = None
    build: Build | None = None


class Provisioner:
    """Runs ESPHome on the node files of one firmware folder.

    ``services`` are the started hub's: a compile asks the ``ota`` plugin there for the node's update manifest URL
    (see :mod:`.update_url`)."""

    def __init__(self, directory: Path, executable: str | None, services: ServiceRegistry | None = None) -> None:
        self.directory = directory
        self._executable = executable
        self._services = services
        self.digests = SourceDigests(directory)

    def executable(self) -> Path:
        """The ``esphome`` executable; :class:`FirmwareError` saying how to get one when there is none."""
        return find_executable(self._executable)

    def check_secrets(self) -> None:
        if not (self.directory / "secrets.yaml").is_file():
            raise FirmwareError(
                f"{self.directory / 'secrets.yaml'} is missing: copy secrets.example.yaml to it and fill it in"
            )

    async def validate(
        self, node: NodeFile, on_line: OnLine, *, by: str | None = None, example_secrets: bool = False
    ) -> Outcome:
        """``esphome config``: offline, nothing downloaded or built.  Records the result (not with example secrets)."""
        executable = self.executable()
        if example_secrets:
            with tempfile.TemporaryDirectory(prefix="hub-esphome-") as scratch:
                workdir = Path(scratch) / "esphome"
                shutil.copytree(self.directory, workdir, ignore=shutil.ignore_patterns("secrets.yaml", ".esphome"))
                shutil.copy(workdir / "secrets.example.yaml", workdir / "secrets.yaml")
                result = await run_esphome(executable, ["config", node.path.name], cwd=workdir, on_line=on_line)
            return Outcome(result.ok, result.returncode, result.problem)
        self.check_secrets()
        digest = self.digests.digest(node.path)
        result = await run_esphome(executable, ["config", node.path.name], cwd=self.directory, on_line=on_line)
        if node.name is not None:
            write_validation(self.directory, node.name, ok=result.ok, source_digest=digest, by=by)
        return Outcome(result.ok, result.returncode, result.problem)

    async def compile(self, node: NodeFile, on_line: OnLine, *, by: str | None = None) -> Outcome:
        """``esphome compile`` with the node's update manifest URL as a substitution; on success the binary is found,
        hashed and recorded in ``hub-build.json``."""
        if node.name is None:
            raise FirmwareError(f"{node.path.name}: no node name (substitutions: name:) to compile")
        executable = self.executable()
        self.check_secrets()
        digest = self.digests.digest(node.path)
        output = CompileOutput()

        def feed(line: str) -> None:
            output.feed(line)
            on_line(line)

        substitutions = await substitution_arguments(self._services, self.directory, node.name, on_line)
        result = await run_esphome(
            executable,
            [*substitutions, "compile", node.path.name],
            cwd=self.directory,
            on_line=feed,
            stop_when_offline=True,
        )
        if not result.ok:
            return Outcome(False, result.returncode, result.problem)
        build_path = output.build_path or node.build_path
        assert build_path is not None  # node.name is set
        binary = find_binary(output, build_path, node.name)
        if binary is None:
            return Outcome(False, result.returncode, f"ESPHome reported success but left no binary in {build_path}")
        build = Build(
            name=node.name,
            file=node.path.name,
            binary=str(binary.resolve()),
            size=binary.stat().st_size,
            sha256=file_sha256(binary),
            version=built_project_version(build_path) or output.esphome_version,
            esphome_version=output.esphome_version,
            config_hash=output.config_hash,
            source_digest=digest,
            compiled_at=binary.stat().st_mtime,
            compiled_by=by,
            factory_binary=str(factory.resolve()) if (factory := find_factory_binary(binary)) else None,
        )
        write_build(build_path, build)
        return Outcome(True, result.returncode, None, build)
