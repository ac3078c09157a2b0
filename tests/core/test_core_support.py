"""The small core helpers: rate-limited logging, rejections, metrics, the durability barrier."""

from __future__ import annotations

import asyncio
import logging

import pytest

from hub.core.durability import Durability
from hub.core.metrics import Metrics
from hub.core.ratelimit import RateLimitedLogger
from hub.core.rejections import Rejections
from hub.testing import FakeClock


def test_rate_limited_logger_logs_first_then_summarises(caplog):
    clock = FakeClock(0.0)
    log = RateLimitedLogger(logging.getLogger("test.rl"), interval=10.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="test.rl"):
        assert log.warning("bad_json", "bad %s", "a")
        assert not log.warning("bad_json", "bad %s", "b")
        assert not log.warning("bad_json", "bad %s", "c")
        assert log.warning("too_big", "big")  # keys are independent
        clock.now = 10.0
        assert log.error("bad_json", "bad %s", "d")
    assert [r.getMessage() for r in caplog.records] == ["bad a", "big", "bad d (2 similar suppressed)"]
    assert caplog.records[-1].levelno == logging.ERROR


def test_rejections_count_by_reason(caplog):
    metrics = Metrics()
    rejections = Rejections(metrics, logging.getLogger("test.rej"))
    with caplog.at_level(logging.WARNING, logger="test.rej"):
        for _ in range(3):
            rejections.reject("not_json", "devices/aa/data", "line 1")
        rejections.reject("too_large", "devices/bb/data")
    assert metrics.value("messages_rejected", reason="not_json") == 3
    assert metrics.value("messages_rejected", reason="too_large") == 1
    assert [r.getMessage() for r in caplog.records] == [
        "Rejected message on 'devices/aa/data': not_json (line 1)",
        "Rejected message on 'devices/bb/data': too_large",
    ]


def test_metrics_get_or_create_and_values():
    metrics = Metrics()
    counter = metrics.counter("things", "Things", ["kind"])
    assert metrics.counter("things", "other doc", ["kind"]) is counter
    counter.labels("a").inc(2)
    metrics.gauge("level", "Level").set(7)
    assert metrics.value("things", kind="a") == 2
    assert metrics.value("level") == 7
    assert metrics.value("never_made") == 0.0
    with pytest.raises(TypeError):
        metrics.gauge("things", "now a gauge")
    # two hubs in one process do not collide
    assert Metrics().counter("things", "Things", ["kind"]) is not counter


def test_metrics_histogram_buckets():
    metrics = Metrics()
    histogram = metrics.histogram("flush_seconds", "Flush time", buckets=(0.1, 1.0))
    histogram.observe(0.5)
    assert metrics.registry.get_sample_value("hub_flush_seconds_bucket", {"le": "1.0"}) == 1
    assert metrics.registry.get_sample_value("hub_flush_seconds_bucket", {"le": "0.1"}) == 0


async def test_durability_barrier():
    durability = Durability()
    assert durability.barrier() is None  # no storage: acknowledge at once
    batch: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    withdraw = durability.set_provider(lambda: batch)
    barrier = durability.barrier()
    assert barrier is batch
    waiter = asyncio.ensure_future(barrier)
    await asyncio.sleep(0)
    assert not waiter.done()
    batch.set_result(None)
    await waiter
    withdraw()
    assert durability.barrier() is None


def test_durability_stale_withdraw_keeps_the_newer_provider():
    durability = Durability()
    withdraw_old = durability.set_provider(lambda: None)
    sentinel = object()
    durability.set_provider(lambda: sentinel)  # type: ignore[arg-type, return-value]
    withdraw_old()
    assert durability.barrier() is sentinel


async def test_durability_wait_committed_waits_for_the_batch_and_a_cancelled_waiter_does_not_fail_it():
    durability = Durability()
    await durability.wait_committed()  # no storage: returns at once
    batch: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    durability.set_provider(lambda: batch)
    impatient = asyncio.ensure_future(durability.wait_committed())
    patient = asyncio.ensure_future(durability.wait_committed())
    await asyncio.sleep(0)
    assert not patient.done()
    impatient.cancel()
    await asyncio.sleep(0)
    assert not batch.cancelled()  # the other messages of the batch still get their commit
    batch.set_result(None)
    await patient
