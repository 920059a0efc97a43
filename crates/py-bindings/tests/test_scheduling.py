"""Decisions through the default and a few small configurations."""

from __future__ import annotations

import pytest

import pointsman
from conftest import config, fleet


def test_default_config_picks_the_least_loaded() -> None:
    s = fleet(pointsman.Scheduler(seed=1, clock="manual"), {"busy": 10, "idle": 0, "mid": 3})
    for i in range(20):
        d = s.schedule("llama-3-8b", prompt=f"question {i}")
        assert d.primary == "idle"
        assert d.endpoints[0] == "idle"
        assert d.destination == "10.0.0.2:8000"
        d.complete()


def test_scores_are_recorded_and_rank_the_primary_first() -> None:
    s = fleet(pointsman.Scheduler(seed=1, clock="manual"), {"busy": 10, "idle": 0, "mid": 3})
    d = s.schedule("m")
    assert set(d.scores) == {"busy", "idle", "mid"}
    assert max(d.scores, key=d.scores.__getitem__) == "idle"
    assert d.scores["idle"] > d.scores["mid"] > d.scores["busy"]
    assert d.profile == "default"
    assert d.profiles == {"default": ["idle"]}
    assert [e.name for e in d.states] == ["idle"]
    quiet = fleet(pointsman.Scheduler(seed=1, clock="manual", record_scores=False), {"a": 0})
    assert quiet.schedule("m").scores == {}


LORA = config(
    """plugins:
- type: queue-scorer
- type: lora-affinity-scorer
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: queue-scorer, weight: 1}
  - {pluginRef: lora-affinity-scorer, weight: 2}
"""
)


def test_lora_affinity_beats_a_shorter_queue() -> None:
    s = pointsman.Scheduler(LORA, seed=1, clock="manual")
    s.set_endpoints([("has-adapter", "10.0.0.1", 8000), ("idle-full", "10.0.0.2", 8000)])
    s.update_metrics("has-adapter", waiting=3, active_adapters=["sql-lora"], max_adapters=4)
    s.update_metrics("idle-full", waiting=0, active_adapters=["a", "b"], max_adapters=2)
    # lora: has-adapter 1.0, idle-full 0.0 (full); queue: 0.0 vs 1.0 → 2.0 against 1.0.
    assert s.schedule("sql-lora").primary == "has-adapter"
    # Without the LoRA scorer the shorter queue wins.
    q = pointsman.Scheduler(
        config("plugins:\n- type: queue-scorer\n"), seed=1, clock="manual"
    )
    q.set_endpoints([("has-adapter", "10.0.0.1", 8000), ("idle-full", "10.0.0.2", 8000)])
    q.update_metrics("has-adapter", waiting=3, active_adapters=["sql-lora"])
    q.update_metrics("idle-full", waiting=0)
    assert q.schedule("sql-lora").primary == "idle-full"


def test_a_repeated_long_prompt_goes_back_to_the_same_endpoint() -> None:
    s = fleet(pointsman.Scheduler(seed=3, clock="manual"), {n: 0 for n in "abcdefgh"})
    system = "You are a meticulous assistant who answers in French. " * 60
    first = s.schedule(
        "llama", messages=[{"role": "system", "content": system}, ("user", "question one")]
    )
    first.complete()
    for i in range(10):
        again = s.schedule(
            "llama",
            messages=[{"role": "system", "content": system}, {"role": "user", "content": f"q{i}"}],
        )
        assert again.primary == first.primary, "prefix affinity"
        assert again.scores[first.primary] > max(
            v for k, v in again.scores.items() if k != first.primary
        )
        again.complete()
    # The same text as a plain prompt, or under another salt, hashes differently: no affinity.
    spread = {
        s.schedule("llama", prompt=system, cache_salt=str(i)).primary for i in range(30)
    }
    assert len(spread) > 1


def test_sheddable_requests_on_a_saturated_pool_get_429() -> None:
    s = fleet(pointsman.Scheduler(seed=1, clock="manual"), {"a": 50, "b": 60}, kv_cache_usage=0.95)
    with pytest.raises(pointsman.SchedulingError) as info:
        s.schedule("llama", prompt="hi", priority=-1)
    assert info.value.status_code == 429
    assert info.value.code == "ResourceExhausted"
    assert "saturated" in str(info.value)
    assert isinstance(info.value, pointsman.PointsmanError)
    # Non-sheddable requests are still served, and a shed request leaves nothing in flight.
    assert s.schedule("llama", prompt="hi", priority=0).primary == "a"
    assert len(s.in_flight()) == 1


def test_an_empty_pool_gives_503() -> None:
    s = pointsman.Scheduler(seed=1)
    with pytest.raises(pointsman.SchedulingError) as info:
        s.schedule("llama")
    assert info.value.status_code == 503


RANDOM = config("plugins:\n- type: random-picker\n")


def test_a_seed_reproduces_decisions() -> None:
    def run(seed: int) -> list[str]:
        s = fleet(
            pointsman.Scheduler(RANDOM, seed=seed, clock="manual"), {f"e{i}": 0 for i in range(8)}
        )
        out = []
        for i in range(50):
            d = s.schedule("m", prompt=f"p{i}")
            out.append(d.primary)
            d.complete()
        return out

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_default_config_with_a_seed_is_reproducible_over_prompts() -> None:
    def run() -> list[str]:
        s = fleet(pointsman.Scheduler(seed=11, clock="manual"), {f"e{i}": i % 3 for i in range(6)})
        return [s.schedule("m", prompt=f"prompt {i % 4} " * 40).primary for i in range(40)]

    assert run() == run()


def test_complete_releases_in_flight_state() -> None:
    s = fleet(pointsman.Scheduler(seed=1, clock="manual"), {"a": 0})
    d1 = s.schedule("m", request_id="r1")
    d2 = s.schedule("m")
    assert s.in_flight() == sorted(["r1", d2.request_id])
    assert d2.request_id.startswith("pointsman-")
    with pytest.raises(ValueError, match="already in flight"):
        s.schedule("m", request_id="r1")
    assert s.complete("r1") is True
    assert s.complete("r1") is False
    assert d1.completed
    assert d2.complete() is True
    assert d2.complete() is False
    assert s.in_flight() == []
    # The id is free again.
    s.schedule("m", request_id="r1").complete()


def test_response_started_is_reported() -> None:
    s = fleet(pointsman.Scheduler(seed=1, clock="manual"), {"a": 0})
    d = s.schedule("m", request_id="r")
    assert s.response_started("r") is True
    assert s.response_started("unknown") is False
    d.response_started()
    d.complete()


def test_only_one_prompt_form_is_accepted() -> None:
    s = fleet(pointsman.Scheduler(seed=1, clock="manual"), {"a": 0})
    with pytest.raises(ValueError, match="at most one"):
        s.schedule("m", prompt="x", token_ids=[1, 2])
    with pytest.raises(TypeError, match="messages"):
        s.schedule("m", messages=["not a message"])  # type: ignore[list-item]
    assert s.schedule("m", token_ids=list(range(500))).primary == "a"
    assert s.schedule("m", messages=[{"role": "user", "content": [{"type": "text", "text": "x"}]}])


def test_subset_hint_narrows_the_candidates() -> None:
    s = fleet(pointsman.Scheduler(seed=1, clock="manual"), {"idle": 0, "busy": 9})
    assert s.schedule("m", subset=["10.0.0.2:8000"]).primary == "busy"
    with pytest.raises(pointsman.SchedulingError) as info:
        s.schedule("m", subset=["192.0.2.1"])
    assert info.value.status_code == 503


def test_reprs_help() -> None:
    s = fleet(pointsman.Scheduler(seed=1, clock="manual"), {"idle": 0, "busy": 9})
    d = s.schedule("m", request_id="r1")
    assert repr(d).startswith("Decision(request_id='r1', endpoints=['idle'], scores={'idle': ")
    assert repr(s) == "Scheduler(endpoints=2, profiles=['default'], clock='manual', now=0.000, in_flight=1)"
    assert "waiting=9" in repr(s.endpoint("busy"))
