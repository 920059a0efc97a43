"""Scorers and filters written in Python, used from the YAML beside the built-ins."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

import pointsman
from conftest import config


class PreferZone:
    """Scores 1.0 for endpoints whose `zone` label matches, else 0.0."""

    category = "affinity"

    def __init__(self, zone: str = "near") -> None:
        self.zone = zone
        self.seen: list[pointsman.Request] = []

    def score(self, request: pointsman.Request, endpoints: list[pointsman.EndpointState]) -> list[float]:
        self.seen.append(request)
        return [1.0 if e.labels.get("zone") == self.zone else 0.0 for e in endpoints]


ZONED = config(
    """plugins:
- type: queue-scorer
- type: prefer-zone
  parameters: {zone: near}
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: queue-scorer, weight: 1}
  - {pluginRef: prefer-zone, weight: 5}
"""
)


def zoned_pool(s: pointsman.Scheduler) -> pointsman.Scheduler:
    s.set_endpoints(
        [
            pointsman.Endpoint("far-idle", "10.0.0.1", 8000, labels={"zone": "far"}),
            pointsman.Endpoint("near-busy", "10.0.0.2", 8000, labels={"zone": "near"}),
        ]
    )
    s.update_metrics("far-idle", waiting=0)
    s.update_metrics("near-busy", waiting=9)
    return s


def test_a_python_scorer_changes_decisions() -> None:
    plain = zoned_pool(pointsman.Scheduler(config("plugins:\n- type: queue-scorer\n"), seed=1, clock="manual"))
    assert plain.schedule("m").primary == "far-idle"
    s = zoned_pool(pointsman.Scheduler(ZONED, seed=1, clock="manual", scorers={"prefer-zone": PreferZone}))
    d = s.schedule("m", prompt="hello", headers={"x-user": "u1"}, priority=2, request_id="r1")
    assert d.primary == "near-busy"
    # queue: far 1.0, near 0.0; zone ×5: near 5.0.
    assert d.scores == {"far-idle": 1.0, "near-busy": 5.0}


def test_parameters_reach_the_class() -> None:
    yaml = ZONED.replace("zone: near", "zone: far")
    s = zoned_pool(pointsman.Scheduler(yaml, seed=1, clock="manual", scorers={"prefer-zone": PreferZone}))
    assert s.schedule("m").scores == {"far-idle": 6.0, "near-busy": 0.0}


def test_the_scorer_sees_the_callers_request() -> None:
    seen: list[pointsman.Request] = []

    def record(request: pointsman.Request, endpoints: list[pointsman.EndpointState]) -> list[float]:
        seen.append(request)
        assert [e.name for e in endpoints] == ["far-idle", "near-busy"]
        assert endpoints[1].waiting == 9
        return [0.0, 0.0]

    yaml = config(
        "plugins:\n- type: record\nschedulingProfiles:\n- name: default\n  plugins: [{pluginRef: record}]\n"
    )
    s = zoned_pool(pointsman.Scheduler(yaml, seed=1, clock="manual", scorers={"record": record}))
    messages = [{"role": "user", "content": "hi"}]
    s.schedule("llama", messages=messages, headers={"x-user": "u1"}, priority=-0, request_id="r9")
    s.schedule("llama", prompt="text")
    (r, r2) = seen
    assert (r.request_id, r.model, r.priority, r.prompt) == ("r9", "llama", 0, None)
    assert r.messages is messages
    assert r.headers == {"x-user": "u1"}
    assert r2.prompt == "text" and r2.request_id.startswith("pointsman-")
    assert "Request(request_id='r9'" in repr(r)


def test_a_python_filter_narrows_and_can_empty_the_candidates() -> None:
    def only_near(request: pointsman.Request, endpoints: list[pointsman.EndpointState]) -> list[bool]:
        return [e.labels.get("zone") == "near" for e in endpoints]

    def nothing(request: pointsman.Request, endpoints: list[pointsman.EndpointState]) -> list[bool]:
        return [False] * len(endpoints)

    yaml = config(
        "plugins:\n- type: only-near\n- type: queue-scorer\n"
        "schedulingProfiles:\n- name: default\n  plugins: [{pluginRef: only-near}, {pluginRef: queue-scorer}]\n"
    )
    s = zoned_pool(pointsman.Scheduler(yaml, seed=1, clock="manual", filters={"only-near": only_near}))
    assert s.schedule("m").primary == "near-busy"
    empty = zoned_pool(pointsman.Scheduler(yaml, seed=1, clock="manual", filters={"only-near": nothing}))
    with pytest.raises(pointsman.SchedulingError) as info:
        empty.schedule("m")
    assert info.value.status_code == 429
    assert "only-near" in str(info.value)


def test_an_object_with_a_score_method_is_accepted() -> None:
    scorer = PreferZone("near")
    s = zoned_pool(pointsman.Scheduler(ZONED.replace("  parameters: {zone: near}\n", ""), seed=1,
                                       clock="manual", scorers={"prefer-zone": scorer}))
    assert s.schedule("m").primary == "near-busy"
    assert len(scorer.seen) == 1


def test_an_exception_in_a_scorer_raises_plugin_error_and_releases_the_request() -> None:
    def broken(request: pointsman.Request, endpoints: list[pointsman.EndpointState]) -> Sequence[float]:
        raise ZeroDivisionError("boom")

    yaml = config("plugins:\n- type: broken\n")
    s = zoned_pool(pointsman.Scheduler(yaml, seed=1, clock="manual", scorers={"broken": broken}))
    with pytest.raises(pointsman.PluginError) as info:
        s.schedule("m", request_id="r1")
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert info.value.plugin == "broken (broken)"
    assert "boom" in str(info.value)
    assert s.in_flight() == []


def test_a_wrong_number_of_scores_is_a_plugin_error() -> None:
    def short(request: pointsman.Request, endpoints: list[pointsman.EndpointState]) -> list[float]:
        return [1.0]

    def not_numbers(request: pointsman.Request, endpoints: list[pointsman.EndpointState]) -> list[str]:
        return ["high"] * len(endpoints)

    for fn in (short, not_numbers):
        s = zoned_pool(pointsman.Scheduler(config("plugins:\n- type: s\n"), clock="manual", scorers={"s": fn}))
        with pytest.raises(pointsman.PluginError) as info:
            s.schedule("m")
        assert isinstance(info.value.__cause__, (ValueError, TypeError))


def test_bad_plugin_parameters_are_config_errors() -> None:
    yaml = ZONED.replace("zone: near", "colour: red")
    with pytest.raises(pointsman.ConfigError) as info:
        pointsman.Scheduler(yaml, scorers={"prefer-zone": PreferZone})
    assert info.value.path == "plugins[1].parameters"
    assert "colour" in info.value.expected

    def fn(request: pointsman.Request, endpoints: list[pointsman.EndpointState]) -> list[float]:
        return [0.0] * len(endpoints)

    with pytest.raises(pointsman.ConfigError, match="takes no parameters"):
        pointsman.Scheduler(ZONED, scorers={"prefer-zone": fn})

    class NoScore:
        pass

    with pytest.raises(pointsman.ConfigError, match="score"):
        pointsman.Scheduler(ZONED.replace("  parameters: {zone: near}\n", ""), scorers={"prefer-zone": NoScore})


def test_a_builtin_type_name_cannot_be_taken() -> None:
    with pytest.raises(pointsman.ConfigError) as info:
        pointsman.Scheduler(scorers={"queue-scorer": PreferZone})
    assert info.value.plugin == "queue-scorer"
