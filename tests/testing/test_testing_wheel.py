"""The test kit works from an installed wheel, not only from this source tree (the private Mosquitto found its
tuning by walking up to deploy/ once, which fails in site-packages)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from hub.testing import unavailable
from hub.testing.mosquitto import mosquitto_binary

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.mosquitto]

CHECK = """
import socket, sys
from pathlib import Path

import hub.testing.mosquitto as kit
from hub.testing import PrivateMosquitto

assert Path(kit.__file__).is_relative_to(sys.argv[1]), kit.__file__
with PrivateMosquitto(Path(sys.argv[2])) as broker:
    with socket.create_connection(("127.0.0.1", broker.port), timeout=5):
        pass
    print(broker.conf.read_text())
"""


def _run(*command: str | Path, **options: object) -> subprocess.CompletedProcess[str]:
    # Without PYTHONPATH: one naming this tree (a developer's shell) would put its hub before the wheel's.
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    done = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=300, env=env, **options
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done


def test_private_mosquitto_from_an_installed_wheel(tmp_path: Path) -> None:
    if mosquitto_binary() is None:
        unavailable("mosquitto is not installed")
    # Build from a copy, so setuptools' build/ folder never lands in (or is reused from) the working tree.
    source = tmp_path / "source"
    source.mkdir()
    shutil.copytree(REPO / "hub", source / "hub", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp_path / "dist", source)
    (wheel,) = (tmp_path / "dist").glob("hub_core-*.whl")

    # A fresh venv holding only the wheel; its dependencies come from this environment's site-packages,
    # listed after the venv's own (a .pth line adds a path without running that folder's .pth files, so
    # the editable install of this tree stays out of sight).
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", wheel)
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip())
    (site / "outer-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")

    out = _run(python, "-c", CHECK, site, tmp_path / "broker", cwd=tmp_path).stdout
    assert "max_queued_messages 10000000" in out
