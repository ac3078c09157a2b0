"""PostgreSQL: the rollups' input, aggregated in the writer: min, max, sum and count per node, key and minute.

The fold used to find each new telemetry row again and aggregate it in SQL
(``jsonb_each`` over every document, a numeric-to-float cast per reading, a
hash aggregate): about half of PostgreSQL's CPU during ingest.  The writer
already holds the rows it inserts, so it aggregates them itself, per (node,
key, minute), counting what the rollups count (JSON numbers, booleans as 0/1),
into a :class:`RollupAccumulator`, whose rows :func:`copy_deltas` appends to
``rollup_pending`` with a binary ``COPY``; :mod:`.rollups` merges them into
the rollups later.  When the accumulator's rows are written, and how a crash
in between loses nothing, is :mod:`.rollup_epochs`' job.

The aggregates describe exactly what the table holds: a row's states dict is
used as it is only when its stored JSON text reads back as that very dict
(:func:`.jsoncodec.encode`: nothing repaired, no NaN written as ``null``);
otherwise the text is parsed (``orjson``), as it is for rows whose dicts are
not at hand.  Parsing every text cost about 0.5 µs a row (the parse and the
dict it makes); the dict usually is at hand.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Iterable, Iterator
from itertools import chain, islice, repeat
from typing import Any

import asyncpg
import orjson

from .batch import ROWS_PER_TURN, TelemetryRecord

MINUTE = 60
_NUMERIC = frozenset((int, float, bool))
"""What a reading must be to count (a bool is 0 or 1; ``min``, ``max`` and ``sum`` take them as such)."""
_COLUMNS = ("node_ref", "key", "bucket", "min_v", "max_v", "sum_v", "n")

DeltaRow = tuple[int, str, float, float, float, float, int]
"""A ``rollup_pending`` row: node_ref, key, bucket (the minute's start), min, max, sum, count.  Ints and bools
stay as they are (no ``float()`` per value: this runs for every reading): asyncpg's binary float8 encoder
converts them, rounding to nearest as PostgreSQL's cast of a JSON number does."""


class RollupAccumulator:
    """Running aggregates per (node, minute) and key, over any number of batches.

    One ``[min, max, sum, count]`` list per node, key and minute, updated in
    place: a reading adds no object unless it opens a new minute or key.  Held
    across batches, it turns a fleet whose nodes have one message each in a
    batch (10,000 nodes: five or six delta rows a message, two thirds of
    PostgreSQL's ingest CPU in writing and folding them) into one row per node,
    key and minute per accumulation.
    """

    __slots__ = ("_groups",)

    def __init__(self) -> None:
        self._groups: dict[tuple[int, int], dict[str, list[Any]]] = {}

    def __len__(self) -> int:
        """The (node, minute) groups held."""
        return len(self._groups)

    def add(self, records: Iterable[TelemetryRecord], documents: Iterable[dict[str, Any] | None] | None = None) -> None:
        """Count ``records``' readings; ``documents`` holds each one's states dict, or None where only the
        stored text says what they are (see the module docstring)."""
        groups = self._groups
        get_group = groups.get
        numeric = _NUMERIC
        floor = math.floor
        loads = orjson.loads
        for (ref, ts, states, _dedupe, _epoch), document in zip(
            records, repeat(None) if documents is None else documents
        ):
            if document is None:
                document = loads(states)
            group_key = (ref, floor(ts / MINUTE))  # floor(ts / 60), as the SQL history buckets it
            group = get_group(group_key)
            if group is None:
                group = groups[group_key] = {}
            for key, value in document.items():
                if type(value) in numeric:
                    aggregate = group.get(key)
                    if aggregate is None:
                        group[key] = [value, value, value, 1]
                    else:
                        if value < aggregate[0]:
                            aggregate[0] = value
                        elif value > aggregate[1]:
                            aggregate[1] = value
                        aggregate[2] += value
                        aggregate[3] += 1

    def forget(self, refs: set[int]) -> None:
        """Drop the aggregates of these nodes (removed: their rows are gone, so are their rollups)."""
        for group_key in [group_key for group_key in self._groups if group_key[0] in refs]:
            del self._groups[group_key]

    def rows(self) -> Iterator[DeltaRow]:
        """The ``rollup_pending`` rows, made one at a time as :func:`copy_deltas` sends them."""
        for (ref, minute), group in self._groups.items():
            bucket = minute * MINUTE
            for key, (low, high, total, count) in group.items():
                yield (ref, key, bucket, low, high, total, count)


async def copy_deltas(db: asyncpg.Connection, rows: Iterable[DeltaRow]) -> int:
    """Append delta rows to ``rollup_pending`` (binary COPY, in the caller's transaction); none, no COPY.

    Returns how many rows went in.  The rows are made and encoded :data:`~.batch.ROWS_PER_TURN` at a time
    with a loop turn between, so sealing a large fleet's epoch (one row per node, key and minute: 50,000
    at 10,000 nodes) does not hold the event loop for the whole ``COPY``.
    """
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return 0
    status = await db.copy_records_to_table(
        "rollup_pending", records=_in_turns(chain((first,), rows)), columns=_COLUMNS
    )
    return int(status.rsplit(" ", 1)[-1])


async def _in_turns(rows: Iterator[DeltaRow]) -> AsyncIterator[DeltaRow]:
    while part := list(islice(rows, ROWS_PER_TURN)):
        for row in part:
            yield row
        await asyncio.sleep(0)
