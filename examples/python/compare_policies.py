"""Compare endpoint-picking policies on a toy fleet, with the real picker in the loop.

Four simulated model servers (one of them slower) serve chat requests from 24 conversations
with long shared system prompts. A server that saw a conversation recently keeps its prefix in
its KV cache and skips most of the prefill. Requests arrive at random over 60 simulated seconds;
every 50 ms the servers publish their queue, running count and KV-cache use, as a metrics
scraper would. The same arrivals are replayed under each policy:

- ``default``: the reference profile (queue + KV-cache + prefix-cache scorers);
- ``queue-only``: the queue scorer alone;
- ``random``: a random picker.

Run: ``pip install ./crates/py-bindings && python examples/python/compare_policies.py``.
"""

from __future__ import annotations

import random
import statistics
from collections import OrderedDict, deque
from dataclasses import dataclass, field

import pointsman

HEADER = "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n"
POLICIES: dict[str, str | None] = {
    "default": None,
    "queue-only": HEADER + "plugins:\n- type: queue-scorer\n",
    "random": HEADER + "plugins:\n- type: random-picker\n",
}
TICK = 0.01  # simulated seconds per step
SCRAPE_EVERY = 5  # ticks between metrics updates (50 ms)
DURATION = 60.0
ARRIVAL_RATE = 30.0  # requests per second
CONVERSATIONS = 24
SLOTS = 4  # concurrent requests per server
CACHE_CONVERSATIONS = 6  # prefixes a server's KV cache holds


@dataclass
class Server:
    """A toy model server: a queue, a few running slots and an LRU of cached prefixes."""

    name: str
    speed: float
    queue: deque[tuple[str, int, float]] = field(default_factory=deque)
    running: dict[str, float] = field(default_factory=dict)  # request id -> finish time
    cache: OrderedDict[int, None] = field(default_factory=OrderedDict)
    hits: int = 0

    def start_waiting(self, now: float) -> None:
        """Moves queued requests into free slots; a cached prefix skips most of the prefill."""
        while self.queue and len(self.running) < SLOTS:
            request_id, conversation, _arrived = self.queue.popleft()
            cached = conversation in self.cache
            self.hits += cached
            self.cache[conversation] = None
            self.cache.move_to_end(conversation)
            if len(self.cache) > CACHE_CONVERSATIONS:
                self.cache.popitem(last=False)
            prefill = 0.03 if cached else 0.25
            self.running[request_id] = now + (prefill + 0.30) / self.speed


def arrivals(seed: int) -> list[tuple[float, int]]:
    """Poisson arrivals over DURATION, each from a conversation (a few are popular)."""
    rng = random.Random(seed)
    t, out = 0.0, list[tuple[float, int]]()
    while True:
        t += rng.expovariate(ARRIVAL_RATE)
        if t >= DURATION:
            return out
        out.append((t, min(int(rng.paretovariate(1.2)) - 1, CONVERSATIONS - 1)))


def run(policy: str, config: str | None, trace: list[tuple[float, int]]) -> dict[str, float]:
    """Replays `trace` under one policy; returns latency and cache statistics."""
    sched = pointsman.Scheduler(config, seed=7, clock="manual")
    servers = {f"srv-{i}": Server(f"srv-{i}", speed) for i, speed in enumerate([1.0, 1.0, 1.0, 0.6])}
    sched.set_endpoints([pointsman.Endpoint(n, f"10.0.0.{i + 1}", 8000) for i, n in enumerate(servers)])
    systems = [f"You are assistant #{c}. " + "Follow the house rules carefully. " * 120 for c in range(CONVERSATIONS)]
    arrived: dict[str, float] = {}
    latencies: list[float] = []
    max_queue, pending, step = 0, deque(trace), 0
    while pending or any(s.queue or s.running for s in servers.values()):
        now = step * TICK
        sched.set_time(now)
        if step % SCRAPE_EVERY == 0:
            sched.update_metrics_many(
                {
                    s.name: {"waiting": len(s.queue), "running": len(s.running), "kv_cache_usage": 0.9 * len(s.running) / SLOTS}
                    for s in servers.values()
                }
            )
        while pending and pending[0][0] <= now:
            t, conversation = pending.popleft()
            messages = [("system", systems[conversation]), ("user", f"question at {t:.3f}")]
            decision = sched.schedule("llama-3-8b", messages=messages)
            arrived[decision.request_id] = t
            servers[decision.primary].queue.append((decision.request_id, conversation, t))
        for s in servers.values():
            for request_id, finish in list(s.running.items()):
                if finish <= now:
                    del s.running[request_id]
                    sched.complete(request_id)
                    latencies.append(finish - arrived.pop(request_id))
            s.start_waiting(now)
            max_queue = max(max_queue, len(s.queue))
        step += 1
    latencies.sort()
    return {
        "mean": statistics.fmean(latencies),
        "p95": latencies[int(0.95 * (len(latencies) - 1))],
        "hit": sum(s.hits for s in servers.values()) / len(latencies),
        "max_queue": max_queue,
        "n": len(latencies),
    }


def main() -> None:
    trace = arrivals(seed=1)
    print(f"{len(trace)} requests over {DURATION:.0f} s, 4 servers (one at 0.6x speed)\n")
    print(f"{'policy':<12} {'mean s':>7} {'p95 s':>7} {'prefix hits':>12} {'max queue':>10}")
    for policy, config in POLICIES.items():
        r = run(policy, config, trace)
        print(f"{policy:<12} {r['mean']:>7.2f} {r['p95']:>7.2f} {r['hit']:>11.0%} {r['max_queue']:>10.0f}")


if __name__ == "__main__":
    main()
