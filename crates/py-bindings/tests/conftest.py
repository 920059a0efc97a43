"""Shared helpers for the pointsman binding tests."""

from __future__ import annotations

from collections.abc import Mapping

import pointsman

HEADER = "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n"


def config(body: str) -> str:
    """An EndpointPickerConfig with the standard header and `body`."""
    return HEADER + body


def fleet(
    scheduler: pointsman.Scheduler,
    queues: Mapping[str, int],
    **metrics: object,
) -> pointsman.Scheduler:
    """Puts one endpoint per name in the pool, with the given waiting queues and fresh metrics."""
    scheduler.set_endpoints(
        [pointsman.Endpoint(name, f"10.0.0.{i + 1}", 8000) for i, name in enumerate(queues)]
    )
    scheduler.update_metrics_many(
        {name: {"waiting": q, "kv_cache_usage": 0.2, **metrics} for name, q in queues.items()}
    )
    return scheduler
