"""CPU time of a local process, read from ``/proc``: the benchmarks' view of the machine's other processes.

A benchmark on a machine shared by the load generator, the broker, the database
and the hub divides a few cores among them; what each spent per message says
where a difference in rate comes from.
"""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, name_prefix: str = "") -> float | None:
    """User+system CPU of process ``pid``; None if it is gone, unreadable, or its name lacks ``name_prefix``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    if not name.startswith(name_prefix):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


class ProcessCpu:
    """The CPU process ``pid`` spends from now on; None throughout for no pid (a broker elsewhere, say)."""

    def __init__(self, pid: int | None) -> None:
        self._pid = pid
        self._start = None if pid is None else cpu_seconds(pid)

    def spent(self) -> float | None:
        """Seconds of CPU since this was made; None if the process is unknown or gone."""
        now = None if self._pid is None else cpu_seconds(self._pid)
        return None if now is None or self._start is None else now - self._start
