"""The writer's rollup deltas, computed in the writer: what counts as a reading and how batches are grouped."""

from __future__ import annotations

import random

import pytest

from hub.plugins.storage.jsoncodec import dumps, encode
from hub.plugins.storage.rollup_deltas import MINUTE_REACH, DeltaRow, RollupAccumulator

T = 1_700_000_040.0  # a minute's start


def delta_rows(records: list[tuple], documents: list | None = None) -> list[DeltaRow]:
    """The delta rows of ``records`` alone (one per node, key and minute with a numeric reading)."""
    accumulator = RollupAccumulator()
    accumulator.add(records, documents)
    return list(accumulator.rows())


def test_numbers_and_booleans_count_per_node_key_and_minute():
    records = [
        (1, T + 1, dumps({"t": 2, "on": True, "mode": "eco", "nested": {"t": 9}, "none": None}), 1, 7),
        (1, T + 59.5, dumps({"t": -1.5, "on": False, "extra": 7}), 2, 7),
        (1, T + 60, dumps({"t": 100}), 3, 7),  # the next minute
        (2, T + 2, dumps({"t": 5}), None, 7),  # another node
        (1, T + 3, dumps({"mode": "off"}), 4, 7),  # nothing numeric
    ]
    rows = sorted(
        (ref, key, bucket, float(low), float(high), float(total), n)
        for ref, key, bucket, low, high, total, n in delta_rows(records)
    )
    assert rows == [
        (1, "extra", T, 7.0, 7.0, 7.0, 1),
        (1, "on", T, 0.0, 1.0, 1.0, 2),
        (1, "t", T, -1.5, 2.0, 0.5, 2),
        (1, "t", T + 60, 100.0, 100.0, 100.0, 1),
        (2, "t", T, 5.0, 5.0, 5.0, 1),
    ]


def test_the_stored_json_is_what_counts():
    """A value the JSON codec turns into null (NaN) is not a reading, as in the stored row."""
    assert list(delta_rows([(1, T, dumps({"t": float("nan"), "u": float("inf"), "v": 1.0}), 1, 7)])) == [
        (1, "v", T, 1.0, 1.0, 1.0, 1)
    ]
    assert list(delta_rows([])) == []


def test_the_dicts_at_hand_give_the_rows_parsing_the_stored_text_gives():
    """The writer aggregates the states dicts it holds where their stored text reads back as them; where it
    does not (a NaN written as null, a key or value repaired), the text is parsed: the rows are the same."""
    states = [
        {"t": 2, "on": True, "mode": "eco", "big": 2**70},  # 2**70: orjson refuses it, the codec repairs it
        {"t": float("nan"), "u": float("-inf"), "v": 1.0},  # written as null
        {"t": -1.5, 3: 4.0, "bad\x00key": 5},  # a non-string key and a NUL: repaired
        {"t": 7, "none": None},
        {"t": 8.25, "on": False},
    ]
    records, documents = [], []
    for index, document in enumerate(states):
        text, verbatim = encode(document)
        records.append((1, T + index, text, index, 7))
        documents.append(document if verbatim else None)
    assert documents[0] is None and documents[1] is None and documents[2] is None and documents[3] is None
    assert documents[4] is states[4]
    assert list(delta_rows(records, documents)) == list(delta_rows(records))
    assert sorted(delta_rows(records, documents))[-1] == (1, "v", T, 1.0, 1.0, 1.0, 1)


def _naive(records: list[tuple[int, float, str, int, int]], documents: list[dict]) -> list[tuple]:
    """The rows by definition: every numeric reading of every record, grouped by node, key and minute."""
    groups: dict[tuple[int, str, float], list] = {}
    for (ref, ts, _text, _dedupe, _epoch), document in zip(records, documents, strict=True):
        for key, value in document.items():
            if type(value) in (int, float, bool):
                groups.setdefault((ref, key, (ts // 60) * 60), []).append(value)
    return sorted(
        (ref, key, bucket, float(min(v)), float(max(v)), float(sum(v)), len(v))
        for (ref, key, bucket), v in groups.items()
    )


@pytest.mark.parametrize(
    ("nodes", "batch"),
    [(4, 97), (2000, 997)],
    ids=["small fleet: slots repeat within a batch", "large fleet: slots mostly once a batch"],
)
def test_an_accumulator_over_many_batches_gives_the_rows_of_all_its_readings(nodes: int, batch: int):
    """Batches of every size add to the same groups; keys come and go, and a key's value is sometimes a string,
    a boolean, None or an object: the rows count exactly the numeric readings, as the stored rows hold them.
    A small fleet's batches are reduced per slot before they are merged; a large fleet's are merged reading by
    reading (a few slots still twice in one batch, most new or held from earlier batches)."""
    rng = random.Random(3)
    odd = [lambda: "text", lambda: None, lambda: True, lambda: rng.randint(-5, 5), lambda: {"nested": 1}]
    records, documents = [], []
    for index in range(3000):
        document: dict = {"t": round(rng.uniform(-10, 10), 2), "h": rng.randint(0, 100)}
        if rng.random() < 0.05:
            del document["h"]
        if rng.random() < 0.05:
            document[rng.choice(("t", "h", "x"))] = rng.choice(odd)()
        records.append((rng.randint(1, nodes), T + rng.uniform(0, 300), dumps(document), index, 7))
        documents.append(document)
    accumulator = RollupAccumulator()
    for start in range(0, len(records), batch):  # each group filled over several batches
        accumulator.add(records[start : start + batch], documents[start : start + batch])
    got = sorted(
        (ref, key, bucket, float(low), float(high), float(total), n)
        for ref, key, bucket, low, high, total, n in accumulator.rows()
    )
    want = _naive(records, documents)
    assert [row[:3] + row[6:] for row in got] == [row[:3] + row[6:] for row in want]
    for row, expected in zip(got, want, strict=True):
        assert row[3:5] == expected[3:5] and row[5] == pytest.approx(expected[5])


def test_readings_beyond_the_slots_reach_are_counted_too_and_forgotten_with_their_node():
    """A backfill weeks away from the epoch, more keys than slots can number, an integer beyond a float's range:
    the first two are counted the slow way, in the same rows; the last is no reading a float8 column can hold."""
    far = MINUTE_REACH * 60 + 3600
    many = {f"k{index}": index for index in range(70_000)}  # key ids past 65,535 have no slot
    records = [
        (1, T + 5, "", 1, 7),
        (1, T + far, "", 2, 7),
        (2, T - far, "", 3, 7),
        (2, T - far + 1, "", 4, 7),
        (3, T + 6, "", 5, 7),
        (1, T + 7, "", 6, 7),
    ]
    documents = [
        {"t": 1.5, "huge": 10**400},
        {"t": 2.5},
        {"t": 3, "on": True},
        {"t": -3},
        many,
        {"t": 0.5, "k69999": 1},
    ]
    accumulator = RollupAccumulator()
    accumulator.add(records[:3], documents[:3])
    accumulator.add(records[3:], documents[3:])
    want = _naive(records, [{k: v for k, v in document.items() if k != "huge"} for document in documents])
    got = sorted(
        (ref, key, bucket, float(low), float(high), float(total), n)
        for ref, key, bucket, low, high, total, n in accumulator.rows()
    )
    assert got == want
    assert (1, "k69999", T, 1.0, 1.0, 1.0, 1) in got and (3, "k69999", T, 69999.0, 69999.0, 69999.0, 1) in got
    assert len(accumulator) == 4  # (node, minute): (1, T), (1, T + far), (2, T - far), (3, T)
    accumulator.forget({1, 2})
    assert {row[0] for row in accumulator.rows()} == {3} and len(accumulator) == 1
