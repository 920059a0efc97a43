"""The pool: membership, metrics, time and staleness."""

from __future__ import annotations

import pytest

import pointsman
from conftest import config, fleet


def test_membership_changes() -> None:
    s = pointsman.Scheduler(clock="manual")
    s.set_endpoints([pointsman.Endpoint("a", "10.0.0.1", 8000, labels={"zone": "x"}), ("b", "10.0.0.2", 8001)])
    assert [e.name for e in s.endpoints()] == ["a", "b"]
    assert s.endpoint("a").labels == {"zone": "x"}
    s.upsert_endpoint("c", "fd00::1", 9000, labels={"zone": "y"})
    assert s.endpoint("c").host_port == "[fd00::1]:9000"
    assert s.remove_endpoint("a") is True
    assert s.remove_endpoint("a") is False
    s.set_endpoints([("c", "fd00::1", 9000)])
    assert [e.name for e in s.endpoints()] == ["c"]
    with pytest.raises(TypeError, match="Endpoint"):
        s.set_endpoints(["not-an-endpoint"])  # type: ignore[list-item]


def test_endpoint_values() -> None:
    e = pointsman.Endpoint("a", "10.0.0.1", 8000, labels={"k": "v"})
    assert (e.name, e.address, e.port, e.host_port, e.labels) == ("a", "10.0.0.1", 8000, "10.0.0.1:8000", {"k": "v"})
    assert e == pointsman.Endpoint("a", "10.0.0.1", 8000, labels={"k": "v"})
    assert e != pointsman.Endpoint("a", "10.0.0.1", 8001)
    assert repr(e) == "Endpoint('a', '10.0.0.1', 8000, labels={'k': 'v'})"


def test_update_metrics_keeps_fields_not_given() -> None:
    s = pointsman.Scheduler(clock="manual", start_time=5.0)
    s.upsert_endpoint("a", "10.0.0.1", 8000)
    assert s.endpoint("a").updated_at is None
    s.update_metrics("a", waiting=3, running=7, kv_cache_usage=0.5, active_adapters=["x"],
                     waiting_adapters=["y"], max_adapters=4, block_size=16, num_blocks=1000)
    s.advance(1.5)
    s.update_metrics("a", waiting=1)
    e = s.endpoint("a")
    assert (e.waiting, e.running, e.kv_cache_usage) == (1, 7, 0.5)
    assert (e.active_adapters, e.waiting_adapters, e.max_adapters) == (["x"], ["y"], 4)
    assert (e.block_size, e.num_blocks, e.updated_at) == (16, 1000, 6.5)
    s.update_metrics("a", waiting=2, at=6.0)
    assert s.endpoint("a").updated_at == 6.0


def test_unknown_endpoints_and_bad_values() -> None:
    s = pointsman.Scheduler(clock="manual")
    s.upsert_endpoint("a", "10.0.0.1", 8000)
    with pytest.raises(pointsman.UnknownEndpointError) as info:
        s.update_metrics("nope", waiting=1)
    assert info.value.endpoint == "nope"
    with pytest.raises(pointsman.UnknownEndpointError):
        s.endpoint("nope")
    with pytest.raises(ValueError, match="kv_cache_usage"):
        s.update_metrics("a", kv_cache_usage=1.5)
    with pytest.raises(OverflowError):
        s.update_metrics("a", waiting=-1)
    # A batch with one unknown name changes nothing.
    with pytest.raises(pointsman.UnknownEndpointError):
        s.update_metrics_many({"a": {"waiting": 9}, "nope": {"waiting": 1}})
    assert s.endpoint("a").waiting == 0
    with pytest.raises(TypeError, match="unknown metric"):
        s.update_metrics_many({"a": {"queue": 9}})


def test_the_manual_clock_moves_only_forward() -> None:
    s = pointsman.Scheduler(clock="manual", start_time=10.0)
    assert s.clock == "manual" and s.now() == 10.0
    s.advance(0.25)
    assert s.now() == 10.25
    s.set_time(20.0)
    assert s.now() == 20.0
    with pytest.raises(ValueError, match="forward"):
        s.set_time(19.0)
    with pytest.raises(ValueError):
        s.advance(-1.0)
    wall = pointsman.Scheduler()
    assert wall.clock == "wall"
    with pytest.raises(ValueError, match="manual"):
        wall.advance(1.0)
    before = wall.now()
    assert wall.now() >= before


QUEUE_ONLY = config("plugins:\n- type: queue-scorer\n")


def test_stale_metrics_never_win_while_a_fresh_endpoint_exists() -> None:
    s = fleet(pointsman.Scheduler(QUEUE_ONLY, seed=1, clock="manual"), {"stale-idle": 0, "fresh-busy": 9})
    s.set_time(10.0)
    s.update_metrics("fresh-busy", waiting=9)  # stamped at 10.0; stale-idle is 10 s old
    assert s.schedule("m").primary == "fresh-busy"
    # With a looser guard, or none, the idle one wins again.
    loose = fleet(
        pointsman.Scheduler(QUEUE_ONLY, seed=1, clock="manual", metrics_staleness=None),
        {"stale-idle": 0, "fresh-busy": 9},
    )
    loose.set_time(10.0)
    loose.update_metrics("fresh-busy", waiting=9)
    assert loose.schedule("m").primary == "stale-idle"
    s2 = fleet(
        pointsman.Scheduler(QUEUE_ONLY, seed=1, clock="manual", metrics_staleness=30.0),
        {"stale-idle": 0, "fresh-busy": 9},
    )
    s2.set_time(10.0)
    assert s2.schedule("m").primary == "stale-idle"
