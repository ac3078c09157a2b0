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
import contextlib
import math
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from itertools import chain, islice
from operator import itemgetter
from typing import Any

import asyncpg
import numpy as np
import orjson

from .batch import ROWS_PER_TURN, TelemetryRecord

MINUTE = 60
_NUMERIC = frozenset((int, float, bool))
"""What a reading must be to count (a bool is 0 or 1; ``min``, ``max`` and ``sum`` take them as such)."""
_KEY_BITS, _MINUTE_BITS = 16, 16
"""A slot packs ``ref`` (``nodes.id``, an int4: 31 bits), the minute and the key's id into one int64."""
MINUTE_REACH = 1 << (_MINUTE_BITS - 1)
"""Minutes either side of the accumulator's reference time that have slots (2**15: about 22 days)."""
_KEY_SPAN = 1 << _KEY_BITS
_COLUMNS = ("node_ref", "key", "bucket", "min_v", "max_v", "sum_v", "n")

DeltaRow = tuple[int, str, float, float, float, float, int]
"""A ``rollup_pending`` row: node_ref, key, bucket (the minute's start), min, max, sum, count.  The readings
are counted as float64, what the table's float8 columns hold: an integer beyond 2**53 is rounded to nearest
as it arrives, as PostgreSQL's cast of a JSON number rounds it (its sum may differ from the exact one in the
last bits, as a float8 sum in SQL does)."""


class _KeyIds(dict[str, int]):
    """Reading keys → dense ids, numbered as they are first met (``map(ids.__getitem__, keys)`` runs in C)."""

    def __missing__(self, key: str) -> int:
        value = self[key] = len(self)
        return value


class RollupAccumulator:
    """Running aggregates per node, key and minute, over any number of batches, in a few numpy arrays.

    Each (node, minute, key) is a *slot*: one 64-bit integer packing the node's ``ref`` (``nodes.id``, an
    int4), the minute (counted from :data:`MINUTE_REACH` minutes before the first batch's median minute) and
    the key's dense id, with its ``min``, ``max``, ``sum`` and ``count`` at the same index of four arrays, all
    sorted by slot.  A batch is reduced with numpy (its readings' slots sorted, each run aggregated) and merged
    in (``searchsorted``: found slots updated, new ones inserted); Python only lists the readings, with C-level
    ``map`` and ``chain`` over the documents.

    Why not one Python object per aggregate (the design before): at 10,000 nodes every message reached its
    node's group dict, five lists and their numbers, which thousands of other messages had pushed out of the
    CPU's caches since, and the lists were containers for the garbage collector to track.  That was the
    largest share of what the hub spent per message more at 10,000 nodes than at 100: end to end it spends 1.8 µs
    a message less now (18.1 against 19.9, ``docs/performance.md``).  Here a batch costs the same per reading at
    any fleet size.

    Readings that do not fit a slot (a minute beyond :data:`MINUTE_REACH` either side, more than 65,536 keys
    in an epoch) are aggregated in a dict instead, into the same rows: a backfill of old readings is correct,
    only slower.
    """

    __slots__ = ("_base", "_count", "_far", "_high", "_key_ids", "_low", "_slots", "_total")

    def __init__(self) -> None:
        self._key_ids = _KeyIds()
        self._base: int | None = None
        """The first minute with slots: :data:`MINUTE_REACH` before the median minute of the first batch (of
        an epoch: what the fleet is sending now; a few readings with odd times cannot move a median far)."""
        self._slots = np.empty(0, np.int64)
        self._low = np.empty(0)
        self._high = np.empty(0)
        self._total = np.empty(0)
        self._count = np.empty(0, np.int64)
        self._far: dict[tuple[int, int, str], list[Any]] = {}
        """(ref, minute, key) → [min, max, sum, count] of readings that fit no slot."""

    def __len__(self) -> int:
        """The (node, minute) groups held (checked every batch against :data:`~.rollup_epochs.MAX_GROUPS`)."""
        groups = self._slots >> _KEY_BITS  # sorted, as the slots are
        held = int(np.count_nonzero(groups[1:] != groups[:-1])) + 1 if len(groups) else 0
        if self._far and self._base is not None:  # rare: a far group may also have readings in slots
            for ref, minute in {slot[:2] for slot in self._far}:
                relative = minute - self._base
                if 0 <= relative < 2 * MINUTE_REACH:
                    group = (ref << _MINUTE_BITS) | relative
                    at = int(np.searchsorted(groups, group))
                    if at < len(groups) and groups[at] == group:
                        continue
                held += 1
        return held

    def add(self, records: Sequence[TelemetryRecord], documents: Sequence[dict[str, Any] | None] | None = None) -> None:
        """Count ``records``' readings; ``documents`` holds each one's states dict, or None where only the
        stored text says what they are (see the module docstring)."""
        if not records:
            return
        if documents is None:
            documents = [orjson.loads(record[2]) for record in records]
        elif None in documents:
            documents = [orjson.loads(r[2]) if d is None else d for r, d in zip(records, documents, strict=True)]
        values = list(chain.from_iterable(map(dict.values, documents)))
        if not values:
            return
        rows = len(records)
        keys = np.fromiter(map(self._key_ids.__getitem__, chain.from_iterable(documents)), np.int64, len(values))
        per_row = np.fromiter(map(len, documents), np.int64, rows)
        refs = np.repeat(np.fromiter(map(itemgetter(0), records), np.int64, rows), per_row)
        row_minutes = np.floor(np.fromiter(map(itemgetter(1), records), np.float64, rows) / MINUTE)
        if self._base is None:
            self._base = int(np.median(row_minutes)) - MINUTE_REACH
        minutes = np.repeat(row_minutes, per_row)
        numbers = _as_numbers(values)
        minutes -= self._base
        counted = ~np.isnan(numbers)
        near = (minutes >= 0) & (minutes < 2 * MINUTE_REACH) & (keys < _KEY_SPAN)
        if not near.all():
            far = counted & ~near
            self._add_far(refs[far], minutes[far] + self._base, keys[far], numbers[far])
            counted &= near
        if not counted.all():
            refs, minutes, keys, numbers = refs[counted], minutes[counted], keys[counted], numbers[counted]
        if len(numbers):
            self._merge((refs << (_MINUTE_BITS + _KEY_BITS)) | (minutes.astype(np.int64) << _KEY_BITS) | keys, numbers)

    def _merge(self, slots: np.ndarray, numbers: np.ndarray) -> None:
        """Merge one batch's readings into the held arrays: new slots inserted, then every reading applied in place.

        The batch is sorted by slot and, where its slots repeat a lot (a small fleet: each node many times a
        batch), reduced per slot first.  A large fleet's batch holds each node about once: there reducing cost
        more than it saved (``reduceat`` pays per run: 1.8 ms for a batch of 60,000 readings in 60,000 slots,
        0.1 ms in 600), and so did gathering the held values, combining and scattering them back; ``ufunc.at``
        updates them in place, in one pass each (``docs/performance.md``, session 13).
        """
        order = np.argsort(slots)
        slots, numbers = slots[order], numbers[order]
        first = np.concatenate(([True], slots[1:] != slots[:-1]))  # the first reading of each slot
        distinct = int(np.count_nonzero(first))
        if 2 * distinct <= len(slots):
            starts = np.flatnonzero(first)
            slots = slots[starts]
            low, high = np.minimum.reduceat(numbers, starts), np.maximum.reduceat(numbers, starts)
            total, count = np.add.reduceat(numbers, starts), np.diff(np.append(starts, len(numbers)))
            first = None  # every slot now appears once
        else:
            low = high = total = numbers
            count = 1
        held = self._slots
        at = np.searchsorted(held, slots)
        found = at < len(held)
        found[found] = held[at[found]] == slots[found]
        if not found.all():
            new = ~found if first is None else ~found & first
            added = slots[new]  # sorted, each once
            self._insert(at[new], added)
            at += np.searchsorted(added, slots)  # each reading's place moves by the new slots inserted before it
        np.minimum.at(self._low, at, low)
        np.maximum.at(self._high, at, high)
        np.add.at(self._total, at, total)
        np.add.at(self._count, at, count)

    def _insert(self, where: np.ndarray, slots: np.ndarray) -> None:
        """New slots, sorted, at their places: no reading yet (the identities of min, max, sum and count)."""
        self._slots = np.insert(self._slots, where, slots)
        self._low = np.insert(self._low, where, np.inf)
        self._high = np.insert(self._high, where, -np.inf)
        self._total = np.insert(self._total, where, 0.0)
        self._count = np.insert(self._count, where, 0)

    def _add_far(self, refs: np.ndarray, minutes: np.ndarray, keys: np.ndarray, numbers: np.ndarray) -> None:
        """Readings without a slot, one at a time (rare: see the class docstring)."""
        names = list(self._key_ids)
        far = self._far
        for ref, minute, key, value in zip(refs.tolist(), minutes.tolist(), keys.tolist(), numbers.tolist()):
            slot = (ref, int(minute), names[key])
            aggregate = far.get(slot)
            if aggregate is None:
                far[slot] = [value, value, value, 1]
            else:
                aggregate[0] = min(aggregate[0], value)
                aggregate[1] = max(aggregate[1], value)
                aggregate[2] += value
                aggregate[3] += 1

    def forget(self, refs: set[int]) -> None:
        """Drop the aggregates of these nodes (removed: their rows are gone, so are their rollups)."""
        if not refs:
            return
        keep = ~np.isin(self._slots >> (_MINUTE_BITS + _KEY_BITS), np.fromiter(refs, np.int64, len(refs)))
        self._slots, self._low, self._high = self._slots[keep], self._low[keep], self._high[keep]
        self._total, self._count = self._total[keep], self._count[keep]
        self._far = {slot: aggregate for slot, aggregate in self._far.items() if slot[0] not in refs}

    def rows(self) -> Iterator[DeltaRow]:
        """The ``rollup_pending`` rows, made one at a time as :func:`copy_deltas` sends them."""
        slots = self._slots
        if self._base is not None and len(slots):
            names = list(self._key_ids)
            refs = (slots >> (_MINUTE_BITS + _KEY_BITS)).tolist()
            buckets = ((((slots >> _KEY_BITS) & (2 * MINUTE_REACH - 1)) + self._base) * MINUTE).tolist()
            keys = map(names.__getitem__, (slots & (_KEY_SPAN - 1)).tolist())
            low, high, total, count = (
                self._low.tolist(),
                self._high.tolist(),
                self._total.tolist(),
                self._count.tolist(),
            )
            yield from zip(refs, keys, buckets, low, high, total, count)
        for (ref, minute, key), (low_v, high_v, total_v, count_v) in self._far.items():
            yield ref, key, minute * MINUTE, low_v, high_v, total_v, count_v


def _as_numbers(values: list[Any]) -> np.ndarray:
    """Each reading as a float64; NaN (never a stored reading: JSON has none) where it does not count."""
    if set(map(type, values)) <= _NUMERIC:
        with contextlib.suppress(OverflowError):  # an integer beyond float's range: the slow path leaves it out
            return np.array(values, np.float64)
    return np.fromiter(map(_as_number, values), np.float64, len(values))


def _as_number(value: Any) -> float:
    if type(value) in _NUMERIC:
        with contextlib.suppress(OverflowError):
            return float(value)
    return math.nan


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
