"""pointsman.sim: compare scheduling policies on a simulated fleet of vLLM-like servers.

The real pointsman scheduler routes every request; servers model continuous batching, chunked
prefill, a prefix-cached KV cache and LoRA slots (defaults: Llama-3.1-8B on one H100). Metrics
reach the scheduler every 50 ms of simulated time, as a scraper would deliver them::

    from pointsman import sim

    workload = sim.shared_prefix(requests=2000, rate=60.0)
    result = sim.compare(workload, ["round-robin", "reference-default", "pointsman"])
    print(result.table())
    best = min(result.results, key=lambda r: r["ttft"]["p90"])

Policies are baseline names (see :func:`baselines`) or ``(name, yaml)`` pairs holding an
``EndpointPickerConfig``. Runs are deterministic for a given ``seed``.
"""

from __future__ import annotations

from os import PathLike

from pointsman._pointsman import (
    Comparison,
    Workload,
    _sim_azure,
    _sim_baselines,
    _sim_compare,
    _sim_mooncake,
    _sim_shared_prefix,
)

__all__ = ["Comparison", "Workload", "azure", "baselines", "compare", "mooncake", "shared_prefix"]


def shared_prefix(
    *,
    groups: int | None = None,
    prompts_per_group: int | None = None,
    system_tokens: int | None = None,
    question_tokens: int | None = None,
    output_tokens: int | None = None,
    turns: int | None = None,
    requests: int | None = None,
    rate: float | None = None,
    constant: bool = False,
    loras: list[tuple[str, float]] | None = None,
    sheddable: float | None = None,
    seed: int = 1,
) -> Workload:
    """A shared-prefix chat workload with ``inference-perf``'s knobs.

    Unset values take the embedded default's (150 groups x 5 prompts, 6,000-token system
    prompts, 1,200-token questions, 300-token outputs, 6,000 requests at 70 requests/s,
    Poisson). ``loras`` lists ``(adapter, share)`` pairs; ``sheddable`` is the fraction of
    requests with priority -1.
    """
    return _sim_shared_prefix(
        groups=groups,
        prompts_per_group=prompts_per_group,
        system_tokens=system_tokens,
        question_tokens=question_tokens,
        output_tokens=output_tokens,
        turns=turns,
        requests=requests,
        rate=rate,
        constant=constant,
        loras=loras,
        sheddable=sheddable,
        seed=seed,
    )


def mooncake(path: str | PathLike[str], speedup: float = 1.0) -> Workload:
    """A Mooncake JSONL trace (512-token ``hash_ids``), arrivals divided by ``speedup``."""
    return _sim_mooncake(path, speedup)


def azure(path: str | PathLike[str], speedup: float = 1.0) -> Workload:
    """An Azure LLM inference CSV trace (no prefix sharing), arrivals divided by ``speedup``."""
    return _sim_azure(path, speedup)


def baselines() -> list[str]:
    """The baseline policy names, in table order."""
    return _sim_baselines()


def compare(
    workload: Workload,
    policies: list[str | tuple[str, str]] | None = None,
    *,
    servers: int = 8,
    heterogeneity: float = 0.0,
    seed: int = 1,
    slo_ttft: float = 2.0,
    slo_tpot: float = 0.1,
) -> Comparison:
    """Runs ``workload`` under each policy on ``servers`` simulated servers.

    Raises :class:`pointsman.ConfigError` for an invalid policy configuration and
    :class:`ValueError` for unusable settings. The GIL is released while simulating.
    """
    return _sim_compare(
        workload,
        policies,
        servers=servers,
        heterogeneity=heterogeneity,
        seed=seed,
        slo_ttft=slo_ttft,
        slo_tpot=slo_tpot,
    )
