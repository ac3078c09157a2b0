"""The config.yaml at the repository root: what `scripts/demo` and `hub run` from a checkout read."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub.core.bootstrap import build_hub

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "config.yaml"
HUB = str(Path(sys.executable).parent / "hub")


@pytest.mark.parametrize("allow", [None, ""], ids=["installed-plugins", "builtins-only"])
def test_check_config_passes_the_shipped_config(allow: str | None, tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "HUB_LOAD_PLUGINS"}
    if allow is not None:
        env["HUB_LOAD_PLUGINS"] = allow  # without the first-party plugins their (commented) sections stay valid
    result = subprocess.run(
        [HUB, "check-config", "-c", str(SHIPPED)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{SHIPPED}: valid (sections: ")


def test_the_shipped_config_keeps_the_embedded_defaults(tmp_path: Path) -> None:
    """scripts/demo needs no broker, database or secrets: the file as shipped is the same as no file."""
    shipped = build_hub(SHIPPED).config
    defaults = build_hub(tmp_path / "config.yaml").config  # a file that does not exist: the built-in defaults
    assert shipped["hub"].pop("data_dir") == str(REPO / "hub-data")
    defaults["hub"].pop("data_dir")
    assert shipped == defaults
    assert shipped["mqtt"].get("broker") is None and shipped["storage"].get("db_url") is None
