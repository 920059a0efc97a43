"""Type stubs for the native module ``pointsman._pointsman`` (re-exported by ``pointsman``)."""

from collections.abc import Iterable, Mapping, Sequence
from os import PathLike
from typing import Any, Literal, Protocol, TypedDict, final

__version__: str
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
    "Comparison",
    "Workload",
    "_sim_azure",
    "_sim_baselines",
    "_sim_compare",
    "_sim_mooncake",
    "_sim_shared_prefix",
]

class _ScoreFunction(Protocol):
    def __call__(self, request: Request, endpoints: list[EndpointState], /) -> Iterable[float]: ...

class _FilterFunction(Protocol):
    def __call__(self, request: Request, endpoints: list[EndpointState], /) -> Iterable[object]: ...

class _ConfigIssue(TypedDict):
    """One problem in a configuration (an item of ``ConfigError.issues``)."""

    path: str
    plugin: str | None
    message: str

def plugin_types() -> list[str]:
    """The built-in plugin type names usable in the YAML configuration, sorted."""

def default_config() -> str:
    """The reference's default ``EndpointPickerConfig`` (used when ``config`` is None), as YAML."""

class PointsmanError(Exception):
    """Base class of every error pointsman raises."""

class ConfigError(PointsmanError):
    """The ``EndpointPickerConfig`` could not be loaded.

    The message lists every problem; the attributes describe the first one.
    """

    plugin: str | None
    """The plugin concerned, as ``"name (type)"``, when there is one."""
    path: str | None
    """The offending field, e.g. ``plugins[0].parameters.blockSize`` (or a YAML location)."""
    expected: str
    """What is wrong and what was expected, e.g. ``expected an integer ≥ 1, got 0``."""
    issues: list[_ConfigIssue]
    """Every problem found."""

class SchedulingError(PointsmanError):
    """No endpoint could be chosen for the request."""

    status_code: int
    """The HTTP status the gateway answers with: 429 (shed, or everything filtered out),
    503 (no endpoints), 500 (internal) or 400 (bad request)."""
    code: Literal["BadRequest", "ResourceExhausted", "ServiceUnavailable", "Internal"]
    """The reference's error code name."""

class PluginError(PointsmanError):
    """A Python scorer or filter raised, or returned something unusable, inside ``schedule()``.

    The decision is released; the original exception is ``__cause__``.
    """

    plugin: str
    """The plugin instance, as ``"name (type)"``."""

class UnknownEndpointError(PointsmanError):
    """The named endpoint is not in the pool."""

    endpoint: str | None
    """The name that was looked up."""

@final
class Endpoint:
    """A model-server endpoint to put in the pool.

    ``Endpoint("vllm-0", "10.0.0.1", 8000, labels={"zone": "a"})``
    """

    def __new__(
        cls, name: str, address: str, port: int, labels: Mapping[str, str] | None = None
    ) -> Endpoint: ...
    @property
    def name(self) -> str:
        """The endpoint's unique name in the pool."""
    @property
    def address(self) -> str:
        """The IP address or host name."""
    @property
    def port(self) -> int:
        """The serving port."""
    @property
    def host_port(self) -> str:
        """``address:port`` (IPv6 addresses in brackets)."""
    @property
    def labels(self) -> dict[str, str]:
        """The labels (a new dict on each access)."""

@final
class EndpointState:
    """An endpoint with its metrics, as one pool snapshot holds it (read-only).

    Returned by ``Scheduler.endpoints()`` and ``Decision.states``; passed to Python plugins.
    """

    @property
    def name(self) -> str:
        """The endpoint's unique name in the pool."""
    @property
    def address(self) -> str:
        """The IP address or host name."""
    @property
    def port(self) -> int:
        """The serving port."""
    @property
    def host_port(self) -> str:
        """``address:port`` (IPv6 addresses in brackets)."""
    @property
    def labels(self) -> dict[str, str]:
        """The labels (a new dict on each access)."""
    @property
    def endpoint(self) -> Endpoint:
        """The endpoint description alone."""
    @property
    def waiting(self) -> int:
        """Requests waiting in the server's queue."""
    @property
    def running(self) -> int:
        """Requests being processed."""
    @property
    def kv_cache_usage(self) -> float:
        """KV-cache usage as a fraction in ``[0, 1]``."""
    @property
    def active_adapters(self) -> list[str]:
        """LoRA adapters loaded and serving."""
    @property
    def waiting_adapters(self) -> list[str]:
        """LoRA adapters waiting for a slot."""
    @property
    def max_adapters(self) -> int:
        """Maximum adapters loaded at once (0 when unknown)."""
    @property
    def block_size(self) -> int:
        """KV-cache block size in tokens (0 when unknown)."""
    @property
    def num_blocks(self) -> int:
        """Number of KV-cache blocks (0 when unknown)."""
    @property
    def updated_at(self) -> float | None:
        """When the metrics were last updated, in seconds on the scheduler's clock."""

@final
class Request:
    """The request as a Python plugin sees it: the arguments given to ``schedule()``."""

    @property
    def request_id(self) -> str:
        """The request id (given or generated)."""
    @property
    def model(self) -> str:
        """The target model or LoRA adapter."""
    @property
    def prompt(self) -> str | None:
        """The completion prompt, if given."""
    @property
    def messages(self) -> Sequence[Mapping[str, Any] | tuple[str, Any]] | None:
        """The chat messages, if given."""
    @property
    def token_ids(self) -> Sequence[int] | None:
        """The token ids, if given."""
    @property
    def headers(self) -> Mapping[str, str]:
        """The headers (empty when none were given)."""
    @property
    def priority(self) -> int:
        """The priority; below 0 means sheddable."""

@final
class Decision:
    """Where a request goes: the primary endpoint first, then fallbacks.

    Call ``complete()`` (or ``Scheduler.complete(request_id)``) when the response ends.
    """

    @property
    def request_id(self) -> str:
        """The request id (given to ``schedule()`` or generated)."""
    @property
    def endpoints(self) -> list[str]:
        """The picked endpoint names, primary first, then fallbacks."""
    @property
    def primary(self) -> str:
        """The primary endpoint's name."""
    @property
    def destination(self) -> str:
        """The ``x-gateway-destination-endpoint`` value: ``ip:port[,ip:port…]``."""
    @property
    def states(self) -> list[EndpointState]:
        """The picked endpoints with the metrics the decision saw, primary first."""
    @property
    def scores(self) -> dict[str, float]:
        """Every candidate's total weighted score in the primary profile, by endpoint name.

        Empty when the scheduler was built with ``record_scores=False``.
        """
    @property
    def profile(self) -> str:
        """The primary profile's name."""
    @property
    def profiles(self) -> dict[str, list[str]]:
        """Every profile that ran and picked: profile name → endpoint names."""
    @property
    def completed(self) -> bool:
        """Whether the decision has been completed."""
    def complete(self) -> bool:
        """Releases the request's in-flight state; returns False if it was already released."""
    def response_started(self) -> None:
        """Reports that the response started streaming (idempotent)."""

_ScorerSpec = type | _ScoreFunction | object
"""A class (called with the YAML ``parameters`` as keyword arguments; its instances define
``score(request, endpoints)``), an object with a ``score`` method, or a function."""

_FilterSpec = type | _FilterFunction | object
"""As ``_ScorerSpec``, with ``filter(request, endpoints)`` returning one truth value per endpoint."""

@final
class Scheduler:
    """The endpoint picker: a pool of endpoints with their metrics, a scheduling cycle
    configured by ``EndpointPickerConfig`` YAML, and the requests in flight.

    Safe to share between Python threads; the GIL is released while Rust schedules.
    """

    def __new__(
        cls,
        config: str | None = None,
        *,
        seed: int | None = None,
        clock: Literal["wall", "manual"] = "wall",
        start_time: float = 0.0,
        metrics_staleness: float | None = 2.0,
        record_scores: bool = True,
        scorers: Mapping[str, _ScorerSpec] | None = None,
        filters: Mapping[str, _FilterSpec] | None = None,
    ) -> Scheduler:
        """Builds a scheduler.

        Args:
            config: ``EndpointPickerConfig`` YAML text; None for the reference's default
                (queue, KV-cache and prefix-cache scorers).
            seed: Seeds tie-breaking and random pickers: the same calls give the same decisions.
                None draws a seed from the OS.
            clock: ``"wall"`` reads the system clock; ``"manual"`` moves only with ``set_time``
                and ``advance`` (for simulators).
            start_time: The manual clock's start, in seconds.
            metrics_staleness: Endpoints whose metrics are older than this many seconds drop out
                while a fresher endpoint exists; None turns the guard off.
            record_scores: Record every candidate's score in ``Decision.scores``.
            scorers: Python scorers by type name, usable in ``config`` as ``type: <name>``.
            filters: Python filters by type name.

        Raises:
            ConfigError: The configuration is invalid (every problem is listed).
            ValueError: A bad ``clock``, ``start_time`` or ``metrics_staleness``.
        """
    def schedule(
        self,
        model: str,
        prompt: str | None = None,
        messages: Iterable[Mapping[str, Any] | tuple[str, Any]] | None = None,
        token_ids: Sequence[int] | None = None,
        headers: Mapping[str, str] | None = None,
        priority: int = 0,
        request_id: str | None = None,
        *,
        cache_salt: str | None = None,
        subset: Sequence[str] | None = None,
    ) -> Decision:
        """Chooses endpoints for one request.

        Args:
            model: The target model or LoRA adapter.
            prompt: A completion prompt (at most one of prompt, messages, token_ids).
            messages: Chat messages as ``{"role", "content"}`` dicts or ``(role, content)``
                tuples; non-string content is hashed as its JSON text.
            token_ids: A pre-tokenised prompt.
            headers: Request headers.
            priority: Below 0 makes the request sheddable (refused with 429 on a saturated pool).
            request_id: Must not be in flight already; None generates ``pointsman-<n>``.
            cache_salt: Requests with different salts never share prefix-cache blocks.
            subset: Only endpoints with these addresses (``ip`` or ``ip:port``) are candidates.

        Raises:
            SchedulingError: No endpoint could be chosen; see ``status_code``.
            PluginError: A Python plugin failed.
            ValueError: ``request_id`` is in flight, or several prompt forms were given.
        """
    def complete(self, request_id: str) -> bool:
        """Releases the in-flight state of ``request_id``; False if it is not in flight."""
    def response_started(self, request_id: str) -> bool:
        """Reports that the response started streaming; False if it is not in flight."""
    def in_flight(self) -> list[str]:
        """The ids of the requests scheduled and not yet completed, sorted."""
    def set_endpoints(self, endpoints: Iterable[Endpoint | tuple[str, str, int] | tuple[str, str, int, Mapping[str, str]]]) -> None:
        """Replaces the pool's membership (listed endpoints kept or added, others removed)."""
    def upsert_endpoint(
        self, name: str, address: str, port: int, labels: Mapping[str, str] | None = None
    ) -> None:
        """Adds an endpoint or replaces its description (metrics kept if address and port are
        unchanged)."""
    def remove_endpoint(self, name: str) -> bool:
        """Removes an endpoint; returns whether it was in the pool."""
    def update_metrics(
        self,
        name: str,
        *,
        waiting: int | None = None,
        running: int | None = None,
        kv_cache_usage: float | None = None,
        active_adapters: Sequence[str] | None = None,
        waiting_adapters: Sequence[str] | None = None,
        max_adapters: int | None = None,
        block_size: int | None = None,
        num_blocks: int | None = None,
        at: float | None = None,
    ) -> None:
        """Updates an endpoint's metrics; fields not given keep their values.

        The metrics are stamped ``at`` (seconds on the scheduler's clock; default now), which
        the staleness guard compares with the clock.

        Raises:
            UnknownEndpointError: No endpoint has that name.
            ValueError: ``kv_cache_usage`` outside ``[0, 1]`` or a negative ``at``.
        """
    def update_metrics_many(
        self, updates: Mapping[str, Mapping[str, Any]], *, at: float | None = None
    ) -> None:
        """Updates many endpoints at once, published as one pool change.

        ``{"vllm-0": {"waiting": 3, "kv_cache_usage": 0.4}, ...}``; same fields as
        ``update_metrics``. A batch naming an unknown endpoint changes nothing.
        """
    def endpoints(self) -> list[EndpointState]:
        """Every endpoint with its current metrics, in pool order."""
    def endpoint(self, name: str) -> EndpointState:
        """One endpoint with its current metrics.

        Raises:
            UnknownEndpointError: No endpoint has that name.
        """
    def now(self) -> float:
        """The current time in seconds on the scheduler's clock."""
    def set_time(self, t: float) -> None:
        """Sets the manual clock to ``t`` seconds; ValueError if earlier than now or on a wall clock."""
    def advance(self, dt: float) -> None:
        """Moves the manual clock forward by ``dt`` seconds; ValueError on a wall clock."""
    @property
    def clock(self) -> Literal["wall", "manual"]:
        """Which clock the scheduler reads."""
    @property
    def profiles(self) -> list[str]:
        """The scheduling profiles' names."""
    @property
    def config_yaml(self) -> str:
        """The configuration in effect, as YAML."""

# --- pointsman.sim (wrapped with documented signatures in pointsman/sim.py) ---

@final
class Workload:
    """Simulated requests: arrivals, token counts, shareable prefix blocks."""

    def __len__(self) -> int: ...
    @property
    def label(self) -> str: ...
    @property
    def arrivals(self) -> list[float]: ...

@final
class Comparison:
    """Per-policy results of a simulated comparison."""

    @property
    def results(self) -> list[dict[str, Any]]: ...
    def table(self) -> str: ...
    def json(self) -> str: ...
    def svg(self) -> str: ...

def _sim_shared_prefix(
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
) -> Workload: ...
def _sim_mooncake(path: str | PathLike[str], speedup: float = 1.0) -> Workload: ...
def _sim_azure(path: str | PathLike[str], speedup: float = 1.0) -> Workload: ...
def _sim_baselines() -> list[str]: ...
def _sim_compare(
    workload: Workload,
    policies: list[str | tuple[str, str]] | None = None,
    *,
    servers: int = 8,
    heterogeneity: float = 0.0,
    seed: int = 1,
    slo_ttft: float = 2.0,
    slo_tpot: float = 0.1,
) -> Comparison: ...
