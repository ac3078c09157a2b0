"""PostgreSQL: a batch's own contribution to the minute rollups, computed in the writer and stored with its rows.

The fold used to find each new telemetry row again and aggregate it in SQL
(``jsonb_each`` over every document, a numeric-to-float cast per reading, a
hash aggregate): about half of PostgreSQL's CPU during ingest.  The writer
already holds the rows it just inserted, so it aggregates them itself, per
(node, key, minute): min, max, sum and count of the readings the rollups count
(JSON numbers, booleans as 0/1).  :func:`delta_rows` makes those rows of
``rollup_pending``, which :func:`copy_deltas` appends with a binary ``COPY``
in the writer's transaction: they commit, or vanish, with exactly the rows
they describe.  :mod:`.rollups` merges them into the rollups later.

The aggregates describe exactly what the table holds: a row's states dict is
used as it is only when its stored JSON text reads back as that very dict
(:func:`.jsoncodec.encode`: nothing repaired, no NaN written as ``null``);
otherwise the text is parsed (``orjson``), as it is for rows whose dicts are
not at hand.  Parsing every text cost about 0.5 µs a row (the parse and the
dict it makes); the dict usually is at hand.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, repeat
from typing import Any

import asyncpg
import orjson

from .batch import TelemetryRecord

MINUTE = 60
_NUMERIC = frozenset((int, float, bool))
"""What a reading must be to count (a bool is 0 or 1; ``min``, ``max`` and ``sum`` take them as such)."""
_COLUMNS = ("node_ref", "key", "bucket", "min_v", "max_v", "sum_v", "n")

Documents = dict[tuple[int, int], list[dict[str, Any]]]
"""The inserted documents by (node_ref, minute number)."""
DeltaRow = tuple[int, str, float, float, float, float, int]
"""A ``rollup_pending`` row: node_ref, key, bucket (the minute's start), min, max, sum, count.  Ints and bools
stay as they are (no ``float()`` per value: this runs for every reading): asyncpg's binary float8 encoder
converts them, rounding to nearest as PostgreSQL's cast of a JSON number does."""


def delta_rows(
    records: Sequence[TelemetryRecord], documents: Sequence[dict[str, Any] | None] | None = None
) -> Iterator[DeltaRow]:
    """One row per (node, key, minute) with at least one numeric reading among the inserted ``records``.

    ``documents``, when given, holds one entry per record: its states as a dict, or None where only the
    stored text says what they are.  The rows are made one at a time as :func:`copy_deltas` sends them,
    so each is freed as soon as it is encoded: a list of them (five or six a message when a fleet's
    nodes have one message each in a batch) kept the young GC generation full, and its collections were
    most of the garbage collector's share at 10,000 nodes.  The writer calls it per slice of at most
    ``ROWS_PER_TURN`` rows, so a large batch does not hold the event loop; only a slice's rows are
    aggregated together.
    """
    return _aggregate(_by_minute(records, repeat(None) if documents is None else documents))


def _by_minute(records: Iterable[TelemetryRecord], given: Iterable[dict[str, Any] | None]) -> Documents:
    """The records' documents grouped by node and minute (one dict operation a record)."""
    documents: Documents = {}
    loads = orjson.loads
    floor = math.floor
    get = documents.get
    for (ref, ts, states, _dedupe), document in zip(records, given):
        if document is None:
            document = loads(states)
        group = (ref, floor(ts / MINUTE))  # floor(ts / 60), as the SQL history and the old fold bucket it
        docs = get(group)
        if docs is None:
            documents[group] = [document]
        else:
            docs.append(document)
    return documents


def _aggregate(documents: Documents) -> Iterator[DeltaRow]:
    numeric = _NUMERIC
    for (ref, minute), docs in documents.items():
        bucket = minute * MINUTE
        if len(docs) == 1:  # the usual case at a node's normal rate: nothing to aggregate
            for key, v in docs[0].items():
                if type(v) in numeric:
                    yield (ref, key, bucket, v, v, v, 1)
            continue
        columns: dict[str, list[Any]] = {}
        for doc in docs:
            for key, v in doc.items():
                if type(v) in numeric:
                    if key in columns:
                        columns[key].append(v)
                    else:
                        columns[key] = [v]
        for key, values in columns.items():
            yield (ref, key, bucket, min(values), max(values), sum(values), len(values))


async def copy_deltas(db: asyncpg.Connection, rows: Iterable[DeltaRow]) -> None:
    """Append delta rows to ``rollup_pending`` (binary COPY, in the caller's transaction); none, no COPY."""
    rows = iter(rows)
    first = next(rows, None)
    if first is not None:
        await db.copy_records_to_table("rollup_pending", records=chain((first,), rows), columns=_COLUMNS)
