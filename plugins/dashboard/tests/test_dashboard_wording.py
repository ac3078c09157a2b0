"""`hub nodes` and the dashboard say durations the same way ("7 min ago", never "7m ago")."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from hub.core.cli import _ago, _duration

FORMAT_JS = Path(__file__).parents[1] / "hub_dashboard" / "static" / "js" / "format.js"
SECONDS = [0, 0.4, 1.49, 1.5, 2, 59.4, 59.5, 60, 61, 419, 420, 3599, 3600, 3660, 7199.6, 86399, 86400, 90000, 2592000]


def test_the_cli_says_durations_as_the_dashboard_does() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the dashboard's format.js cannot be run outside a browser")
    script = (
        f"import {{ formatDuration }} from {json.dumps(FORMAT_JS.as_uri())};"
        f"console.log(JSON.stringify({json.dumps(SECONDS)}.map(formatDuration)));"
    )
    # format.js touches no DOM at import, so node can run it as it is.
    out = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True, text=True, check=True)
    assert [_duration(s) for s in SECONDS] == json.loads(out.stdout)
    assert _ago(420) == "7 min ago" and _ago(1) == "just now" and _ago(3 * 3600 + 300) == "3 h 5 min ago"
