"""What the Python binding adds to one scheduling decision, and what a Python scorer costs.

Rebuilds the fixture of the Rust criterion bench ``benches/benches/python_overhead_baseline.rs``
(64 endpoints from ``fill_pool(..., 1)``, the 8 KiB chat prompt ``chat_prompt(8192, 7)``, the
same warm-up, the reference default profile, a manual clock at 1000 s) and times
``schedule(...)`` + ``complete()`` with ``timeit``. Compare with::

    cargo bench -p pointsman-benches --bench python_overhead_baseline

Run: ``python crates/py-bindings/bench/overhead.py [--number N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable

import pointsman

ENDPOINTS = 64
PROMPT_BYTES = 8 * 1024
NOW = 1000.0
MASK = (1 << 64) - 1
WORDS = ["model", "token", "cache", "prefix", "route", "gateway", "latency", "the", "of", "and"]
HEADER = "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n"


class Fixture:
    """SplitMix64, as ``pointsman_benches::Fixture``."""

    def __init__(self, seed: int) -> None:
        self.state = seed & MASK

    def next_u64(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        return self.next_u64() % max(n, 1)


def fill_pool(s: pointsman.Scheduler, n: int, seed: int) -> None:
    """``pointsman_benches::fill_pool``: n vLLM-like endpoints with varied, fresh metrics."""
    f = Fixture(seed)
    endpoints = []
    metrics = {}
    for i in range(n):
        name = f"vllm-{i}-rank-0"
        endpoints.append(
            pointsman.Endpoint(name, f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}", 8000)
        )
        waiting = f.below(12)
        running = f.below(64)
        kv = f.below(900) / 1000.0
        metrics[name] = {
            "waiting": waiting,
            "running": running,
            "kv_cache_usage": kv,
            "block_size": 16,
            "num_blocks": 31_250,
        }
    s.set_endpoints(endpoints)
    s.update_metrics_many(metrics, at=NOW)


def chat_prompt(size: int, seed: int) -> list[dict[str, str]]:
    """``pointsman_benches::chat_prompt``: a long system prompt and a short question."""
    f = Fixture(seed)
    parts: list[str] = []
    length = 0
    while length + 64 < size:
        word = WORDS[f.below(len(WORDS))]
        parts.append(word + " ")
        length += len(word) + 1
    return [
        {"role": "system", "content": "".join(parts)},
        {"role": "user", "content": "Summarise the routing policy in one paragraph."},
    ]


def warm(s: pointsman.Scheduler) -> None:
    """The Rust bench's warm-up: unrelated prompts everywhere, then the bench prompt 3 times."""
    f = Fixture(99)
    for i in range(ENDPOINTS * 8):
        other = chat_prompt(PROMPT_BYTES, 1000 + f.below(1 << 20))
        s.schedule("llama-3-8b", messages=other, request_id=f"warm-{i}").complete()
    msgs = chat_prompt(PROMPT_BYTES, 7)
    for i in range(3):
        s.schedule("llama-3-8b", messages=msgs, request_id=f"seed-{i}").complete()


def scheduler(config: str | None = None, **kwargs: object) -> pointsman.Scheduler:
    """``default_scheduler(64, 1)``, warmed."""
    s = pointsman.Scheduler(config, seed=1, clock="manual", start_time=NOW, **kwargs)  # type: ignore[arg-type]
    fill_pool(s, ENDPOINTS, 1)
    warm(s)
    return s


def zeros(request: pointsman.Request, endpoints: list[pointsman.EndpointState]) -> list[float]:
    """The cheapest useful Python scorer: one score per endpoint."""
    return [0.0] * len(endpoints)


def queue_like(request: pointsman.Request, endpoints: list[pointsman.EndpointState]) -> list[float]:
    """A scorer that reads a metric of every endpoint (as a real policy would)."""
    queues = [e.waiting for e in endpoints]
    lo, hi = min(queues), max(queues)
    span = (hi - lo) or 1
    return [(hi - q) / span for q in queues]


WITH_PY_SCORER = HEADER + """plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
- type: py-scorer
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: queue-scorer, weight: 2}
  - {pluginRef: kv-cache-utilization-scorer, weight: 2}
  - {pluginRef: prefix-cache-scorer, weight: 3}
  - {pluginRef: py-scorer, weight: 1}
"""


def per_call_us(fn: Callable[[], object], number: int, repeat: int) -> float:
    """The best of ``repeat`` runs of ``number`` calls, in microseconds per call."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000, help="calls per timing run")
    parser.add_argument("--repeat", type=int, default=5, help="timing runs (the best is kept)")
    args = parser.parse_args()
    msgs = chat_prompt(PROMPT_BYTES, 7)

    def bench(s: pointsman.Scheduler, request_id: str | None = "bench") -> float:
        schedule = s.schedule

        def once() -> None:
            schedule("llama-3-8b", messages=msgs, request_id=request_id).complete()

        return per_call_us(once, args.number, args.repeat)

    rows = [
        ("schedule+complete, record_scores=False", bench(scheduler(record_scores=False))),
        ("schedule+complete (default, scores recorded)", bench(scheduler())),
        ("  ... with a generated request id", bench(scheduler(), request_id=None)),
        (
            "  ... plus a Python scorer returning zeros",
            bench(scheduler(WITH_PY_SCORER, scorers={"py-scorer": zeros})),
        ),
        (
            "  ... plus a Python scorer reading .waiting",
            bench(scheduler(WITH_PY_SCORER, scorers={"py-scorer": queue_like})),
        ),
    ]
    print(f"{ENDPOINTS} endpoints, {PROMPT_BYTES // 1024} KiB chat prompt, default profile")
    print(f"{'case':<48} {'µs/call':>8}")
    for name, us in rows:
        print(f"{name:<48} {us:>8.2f}")


if __name__ == "__main__":
    main()
