"""The non-overlapping cover of the router's filters that the hub subscribes at the broker."""

from __future__ import annotations

import itertools

from hub.core.messages import topic_matches, validate_filter
from hub.plugins.mqtt.filters import SubscriptionLedger, cover


def test_covered_filters_are_dropped_and_disjoint_ones_kept() -> None:
    assert cover({"d/+/data": 1, "d/#": 1, "d/a/status": 0}) == {"d/#": 1}
    assert cover({"d/+/data": 1, "d/+/status": 1, "ha/#": 0}) == {"d/+/data": 1, "d/+/status": 1, "ha/#": 0}
    assert cover({"a": 0, "a/#": 1}) == {"a/#": 1}


def test_partial_overlaps_merge_into_the_narrowest_common_filter_with_the_highest_qos() -> None:
    assert cover({"a/+/x": 1, "a/b/#": 0}) == {"a/+/#": 1}
    assert cover({"x/+": 0, "+/y": 1, "z": 1}) == {"+/+": 1, "z": 1}


def test_plain_topics_are_kept_or_folded_into_the_wildcard_covering_them() -> None:
    topics = {f"dev/n{number}/state": number % 2 for number in range(1000)}
    assert cover({**topics, "dev/+/state": 0}) == {"dev/+/state": 1}
    assert cover({**topics, "other/#": 0}) == {**topics, "other/#": 0}
    assert cover({"a/b": 1, "a/+": 0, "a": 0}) == {"a": 0, "a/+": 1}


def test_system_topics_are_not_swallowed_by_a_leading_wildcard() -> None:
    assert cover({"$SYS/#": 0, "#": 1}) == {"#": 1, "$SYS/#": 0}


def test_the_cover_matches_everything_the_filters_match_and_never_overlaps() -> None:
    filters = {"d/+/data": 1, "d/a/#": 0, "e/+": 1, "+/x/y": 0, "f": 1, "f/g/h": 1}
    result = cover(filters)
    topics = ["/".join(parts) for n in (1, 2, 3) for parts in itertools.product("defaxyg", repeat=n)]
    topics += ["d/n/data", "f/g/h"]
    for topic in topics:
        levels = topic.split("/")
        wanted = [f for f in filters if topic_matches(validate_filter(f), levels)]
        covering = [f for f in result if topic_matches(validate_filter(f), levels)]
        assert len(covering) <= 1, (topic, covering)
        if wanted:
            assert covering and result[covering[0]] >= max(filters[f] for f in wanted), topic


def test_the_ledger_remembers_filters_per_session(tmp_path) -> None:
    path = tmp_path / "mqtt-subscriptions.json"
    one, two = SubscriptionLedger(path, "mqtt://a:1883 hub-x"), SubscriptionLedger(path, "mqtt://b:1883 hub-x")
    assert one.load() == set()
    one.save({"d/#"})
    two.save({"e/+"})
    assert one.load() == {"d/#"} and two.load() == {"e/+"}
    path.write_text("not json")
    assert one.load() == set()
