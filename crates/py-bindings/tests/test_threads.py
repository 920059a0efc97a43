"""Sharing one scheduler between Python threads."""

from __future__ import annotations

import threading

import pointsman
from conftest import fleet


def test_threads_share_one_scheduler() -> None:
    s = fleet(pointsman.Scheduler(seed=1, clock="manual"), {f"e{i}": i for i in range(8)})
    errors: list[BaseException] = []
    per_thread = 500

    def work(t: int) -> None:
        try:
            for i in range(per_thread):
                d = s.schedule("m", prompt=f"thread {t} request {i}", request_id=f"{t}-{i}")
                if i % 2:
                    assert s.complete(d.request_id)
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(s.in_flight()) == 4 * per_thread // 2
    for rid in s.in_flight():
        assert s.complete(rid)
    assert s.in_flight() == []


def test_python_scorers_run_from_several_threads() -> None:
    calls = 0
    lock = threading.Lock()

    def count(request: pointsman.Request, endpoints: list[pointsman.EndpointState]) -> list[float]:
        nonlocal calls
        with lock:
            calls += 1
        return [1.0 if e.name == "e0" else 0.0 for e in endpoints]

    s = pointsman.Scheduler(
        "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n"
        "plugins:\n- type: count\n",
        seed=1,
        clock="manual",
        scorers={"count": count},
    )
    fleet(s, {f"e{i}": 0 for i in range(4)})

    def work() -> None:
        for _ in range(200):
            assert s.schedule("m").complete()

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == 600
