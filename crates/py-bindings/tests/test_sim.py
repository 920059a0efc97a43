"""pointsman.sim: the fleet simulator from Python."""

from __future__ import annotations

from pathlib import Path

import pytest

import pointsman
from pointsman import sim

# The repository sits beside ../shared (the project's shared data).
SHARED = Path(__file__).resolve().parents[4] / "shared"


def small(rate: float = 60.0, requests: int = 1500) -> sim.Workload:
    return sim.shared_prefix(requests=requests, rate=rate, output_tokens=100)


def test_prefix_aware_beats_round_robin_near_saturation() -> None:
    result = sim.compare(small(), ["round-robin", "reference-default"])
    rr, ref = result.results
    assert rr["policy"] == "round-robin" and ref["policy"] == "reference-default"
    assert ref["ttft"]["p90"] * 10 < rr["ttft"]["p90"]
    assert ref["prefix_hit_rate"] > rr["prefix_hit_rate"] + 0.3
    assert "reference-default" in result.table()
    assert result.svg().startswith("<svg")


def test_same_seed_same_results_and_custom_yaml_policies() -> None:
    yaml = pointsman.default_config()
    a = sim.compare(small(requests=400), [("mine", yaml)], seed=3).results
    b = sim.compare(small(requests=400), [("mine", yaml)], seed=3).results
    assert a == b
    assert a[0]["completed"] == 400


def test_bad_policies_raise() -> None:
    with pytest.raises(ValueError, match="unknown baseline"):
        sim.compare(small(requests=10), ["nope"])
    with pytest.raises(pointsman.ConfigError):
        sim.compare(small(requests=10), [("bad", "plugins: [")])
    with pytest.raises(ValueError):
        sim.shared_prefix(groups=0)


def test_traces_load() -> None:
    trace = SHARED / "traces" / "mooncake" / "synthetic_trace.jsonl"
    w = sim.mooncake(trace, speedup=2.0)
    assert len(w) == 3993
    assert w.arrivals == sorted(w.arrivals)
    with pytest.raises(OSError):
        sim.azure(SHARED / "no-such-trace.csv")
    assert "pointsman" in sim.baselines()
