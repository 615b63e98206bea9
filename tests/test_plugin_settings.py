"""The LiteLLM plugin's settings: config mapping, environment overrides, aliases, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from adaptive_router.integrations.plugin_settings import PluginSettings, validate_knob

from adaptive_router.errors import ConfigError, InvalidRequestError


def test_mapping_env_overrides_and_env_references(tmp_path: Path) -> None:
    raw = {"fleet": "fleet.yaml", "router": "os.environ/MY_ROUTER", "policy": {"tradeoff": 0.5},
           "traffic_log": "from-config.jsonl"}
    env = {"MY_ROUTER": "ckpt", "ADAPTIVE_ROUTER_TRAFFIC_LOG": "/logs/t.jsonl",
           "ADAPTIVE_ROUTER_EPSILON": "0.1"}
    s = PluginSettings.load(raw, env=env, config_dir=tmp_path)
    assert s.router == "ckpt"
    assert s.traffic_log == "/logs/t.jsonl"  # the environment wins over the file
    assert s.explore_epsilon == pytest.approx(0.1)
    assert s.policy == {"tradeoff": 0.5}


def test_relative_paths_resolve_beside_the_config(tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").write_text("models: [{name: a}]\n")
    s = PluginSettings.load({"fleet": "fleet.yaml"}, env={}, config_dir=tmp_path)
    assert s.path(s.fleet) == tmp_path / "fleet.yaml"
    assert s.router_spec() == "default"  # not a folder: a name for load_router


def test_aliases() -> None:
    s = PluginSettings.load({"fleet": "f.yaml", "aliases": {"adaptive-cheap": {"budget_usd": 0.001}}},
                            env={})
    assert s.knob_for_alias("adaptive-router") == {}
    assert s.knob_for_alias("adaptive-0.3") == {"threshold": 0.3}
    assert s.knob_for_alias("adaptive-cheap") == {"budget_usd": 0.001}
    assert s.knob_for_alias("gpt-4o") is None
    assert s.knob_for_alias("adaptive-summariser") is None  # not a number: someone else's model
    with pytest.raises(InvalidRequestError, match="within"):
        s.knob_for_alias("adaptive-1.5")


def test_errors_say_what_to_do() -> None:
    with pytest.raises(ConfigError, match="ADAPTIVE_ROUTER_FLEET"):
        PluginSettings.load({}, env={})
    with pytest.raises(ConfigError, match="adaptive_router.selector"):
        PluginSettings.load({"fleet": "f.yaml", "selector": "best"}, env={})
    with pytest.raises(ConfigError, match="not set"):
        PluginSettings.load({"fleet": "os.environ/NOPE"}, env={})
    with pytest.raises(ConfigError, match="must be a mapping"):
        PluginSettings.load(["fleet"], env={})  # type: ignore[arg-type]


def test_knob_validation() -> None:
    assert validate_knob({"threshold": 0.4, "epsilon": 0.1}) == {"threshold": 0.4, "epsilon": 0.1}
    assert validate_knob('{"budget_usd": 0.002}') == {"budget_usd": 0.002}
    for bad, msg in [({"threshold": 2}, "within"), ({"budget_usd": -1}, "negative"),
                     ({"threshold": 0.2, "tradeoff": 1}, "exactly one"), ({"speed": 1}, "unknown"),
                     ("nonsense", "object"), ({"threshold": 0.5, "epsilon": 3}, "epsilon")]:
        with pytest.raises(InvalidRequestError, match=msg):
            validate_knob(bad)


def test_api_keys_defaults_are_checked_when_the_settings_load() -> None:
    """A team's or key's defaults (issue 17) are knobs: a bad one fails the config at load, named,
    not on some later request; an entry whose key variable is unset is inactive, not an error."""
    ok = PluginSettings.load({"fleet": "f.yaml", "api_keys": [
        {"key": "os.environ/NOT_SET_ANYWHERE", "team_id": "t",
         "team_metadata": {"adaptive_router": {"tradeoff": 0.3, "explore_epsilon": 0.1}}},
        {"key": None, "key_alias": "resolved-by-litellm-to-none"}]}, env={})
    assert [k.resolved_key(env={}) for k in ok.api_keys] == [None, None]
    assert ok.api_keys[0].resolved_key(env={"NOT_SET_ANYWHERE": "sk-x"}) == "sk-x"
    with pytest.raises(ConfigError, match="team_metadata"):
        PluginSettings.load({"fleet": "f.yaml", "api_keys": [
            {"key": "sk-a", "team_metadata": {"adaptive_router": {"threshold": 0.2, "tradeoff": 1}}}]}, env={})
