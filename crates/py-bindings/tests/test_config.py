"""Configuration loading and its errors."""

from __future__ import annotations

import pytest

import pointsman
from conftest import config


def test_a_bad_parameter_raises_config_error_naming_the_field() -> None:
    yaml = config("plugins:\n- type: prefix-cache-scorer\n  parameters: {blockSize: 0}\n")
    with pytest.raises(pointsman.ConfigError) as info:
        pointsman.Scheduler(yaml)
    e = info.value
    assert e.path == "plugins[0].parameters.blockSize"
    assert e.plugin == "prefix-cache-scorer (prefix-cache-scorer)"
    assert e.expected == "expected an integer ≥ 1, got 0"
    assert "plugins[0].parameters.blockSize" in str(e)
    assert isinstance(e, pointsman.PointsmanError)


def test_every_problem_is_listed() -> None:
    yaml = (
        "plugins:\n- type: prefix-cache-scorer\n  parameters: {blockSize: 0}\n"
        "- type: no-such-scorer\n"
    )
    with pytest.raises(pointsman.ConfigError) as info:
        pointsman.Scheduler(yaml)
    paths = [i["path"] for i in info.value.issues]
    assert "apiVersion" in paths and "kind" in paths
    assert "plugins[0].parameters.blockSize" in paths
    assert any("no-such-scorer" in i["message"] for i in info.value.issues)
    assert info.value.path == info.value.issues[0]["path"]


def test_unknown_fields_and_bad_yaml_are_config_errors() -> None:
    with pytest.raises(pointsman.ConfigError, match="unknownField"):
        pointsman.Scheduler(config("unknownField: 1\n"))
    with pytest.raises(pointsman.ConfigError) as info:
        pointsman.Scheduler("plugins: [\n")
    assert info.value.plugin is None
    assert info.value.expected


def test_default_config_is_the_reference_default() -> None:
    s = pointsman.Scheduler()
    assert s.profiles == ["default"]
    yaml = s.config_yaml
    for t in ("queue-scorer", "kv-cache-utilization-scorer", "prefix-cache-scorer"):
        assert t in yaml
    assert "prefix-cache-scorer" in pointsman.default_config()
    # The printed configuration loads again.
    assert pointsman.Scheduler(yaml).profiles == ["default"]


def test_plugin_types_lists_the_builtins() -> None:
    types = pointsman.plugin_types()
    assert "queue-scorer" in types and "max-score-picker" in types
    assert types == sorted(types)


def test_bad_constructor_options_raise_value_error() -> None:
    with pytest.raises(ValueError, match="clock"):
        pointsman.Scheduler(clock="sundial")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="metrics_staleness"):
        pointsman.Scheduler(metrics_staleness=-1.0)
    with pytest.raises(ValueError, match="start_time"):
        pointsman.Scheduler(clock="manual", start_time=float("nan"))
