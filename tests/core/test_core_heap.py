"""The fleet that registers after start is frozen out of the collector as it grows (hub.core.heap)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from hub.core.heap import MIN_GROWTH, refreeze_if_grown


class _Fleet:
    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Whatever a test freezes goes back to the collector afterwards (a test run must not pin its objects)."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_small_growth_leaves_the_heap_alone(unfrozen: None) -> None:
    assert refreeze_if_grown(_Fleet(MIN_GROWTH - 1), 0) == 0
    assert refreeze_if_grown(_Fleet(40_000 + MIN_GROWTH), 40_000) == 40_000  # under a quarter of 40,000
    assert gc.get_freeze_count() == 0


def test_a_grown_fleet_is_frozen_and_becomes_the_new_mark(unfrozen: None) -> None:
    survivor = [[index] for index in range(100)]  # containers the collector tracks, alive across the freeze
    assert refreeze_if_grown(_Fleet(MIN_GROWTH), 0) == MIN_GROWTH
    assert gc.get_freeze_count() >= len(survivor)
    assert refreeze_if_grown(_Fleet(MIN_GROWTH + 10), MIN_GROWTH) == MIN_GROWTH  # the mark moved
