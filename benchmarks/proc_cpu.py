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
