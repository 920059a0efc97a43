"""pointsman: the endpoint picker for LLM inference gateways, from Python.

The real picker (the Rust core, configured with the Gateway API Inference Extension's
``EndpointPickerConfig`` YAML) for cluster simulators and policy experiments::

    import pointsman

    sched = pointsman.Scheduler(seed=1, clock="manual")
    sched.set_endpoints([pointsman.Endpoint(f"vllm-{i}", "10.0.0.1", 8000 + i) for i in range(3)])
    for i, queue in enumerate([4, 0, 9]):
        sched.update_metrics(f"vllm-{i}", waiting=queue, kv_cache_usage=0.3)
    decision = sched.schedule("llama-3-8b", prompt="Why is the sky blue?")
    assert decision.primary == "vllm-1"
    decision.complete()

Custom scorers and filters written in Python are registered by type name
(``Scheduler(config, scorers={"my-scorer": MyScorer})``) and used from the YAML beside the
built-ins. Errors derive from :class:`PointsmanError`.
"""

from pointsman._pointsman import (
    ConfigError,
    Decision,
    Endpoint,
    EndpointState,
    PluginError,
    PointsmanError,
    Request,
    Scheduler,
    SchedulingError,
    UnknownEndpointError,
    __version__,
    default_config,
    plugin_types,
)

__all__ = [
    "ConfigError",
    "Decision",
    "Endpoint",
    "EndpointState",
    "PluginError",
    "PointsmanError",
    "Request",
    "Scheduler",
    "SchedulingError",
    "UnknownEndpointError",
    "__version__",
    "default_config",
    "plugin_types",
]
