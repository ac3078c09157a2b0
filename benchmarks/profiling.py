"""py-spy around a benchmark phase: what ``ingest.py --profile`` and ``ingest_rabbitmq.py --profile`` record.

Raw collapsed stacks at 200 Hz with native frames and only GIL-holding samples, for ``profile_shares.py``.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path


def start_profiler(output: Path | None, pid: int) -> subprocess.Popen[bytes] | None:
    """py-spy sampling process ``pid`` from now on into ``output``; None when no ``output`` was asked for."""
    if output is None:
        return None
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    command = [py_spy, "record", "--native", "--gil", "-r", "200", "-f", "raw", "-o", str(output), "-p", str(pid)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profiler(profiler: subprocess.Popen[bytes] | None) -> None:
    """Stop py-spy (it writes its file on SIGINT); bounded."""
    if profiler is None:
        return
    profiler.send_signal(signal.SIGINT)
    try:
        profiler.wait(timeout=60)
    except subprocess.TimeoutExpired:
        profiler.kill()
        profiler.wait()
