"""The plugin's startup check in-process (issue 16, item 5): the whole router is loaded and a
probe prompt routed when the runtime is built; bad checkpoints fail there with a message that
names the file; client error messages lose absolute server paths."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from adaptive_router.errors import CheckpointError, ConfigError

BUNDLED = Path(__file__).resolve().parents[1] / "adaptive_router" / "pretrained" / "default"


def _settings(tmp_path: Path, router: str, **extra):
    from adaptive_router.integrations.plugin_settings import PluginSettings

    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(yaml.safe_dump({"reference": "strong", "selector": "first", "models": [
        {"name": "weak", "litellm_model": "w", "n": [1, 3], "price": {"input_per_token": 1e-7, "output_per_token": 1e-7}},
        {"name": "strong", "litellm_model": "s", "n": [1], "price": {"input_per_token": 1e-6, "output_per_token": 1e-6}}]}),
        encoding="utf-8")
    return PluginSettings.load({"fleet": str(fleet), "router": router, **extra}, env={})


def _edited(tmp_path: Path, **params) -> Path:
    folder = tmp_path / "router"
    shutil.copytree(BUNDLED, folder)
    cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    cfg["params"].update(params)
    (folder / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    return folder


def test_bad_encoder_path_fails_when_the_runtime_is_built(tmp_path) -> None:
    from adaptive_router.integrations.litellm_plugin.runtime import AdaptiveRuntime

    with pytest.raises(ConfigError, match="etc/passwd"):
        AdaptiveRuntime(_settings(tmp_path, str(_edited(tmp_path, encoder="../../etc/passwd"))))


def test_unknown_checkpoint_parameter_is_a_checkpoint_error(tmp_path) -> None:
    from adaptive_router.routers import load_router

    with pytest.raises(CheckpointError, match="config.json.*surprise"):
        load_router(_edited(tmp_path, surprise=1))


def test_policy_with_accept_and_epsilon_passes_the_check(tmp_path) -> None:
    from adaptive_router.integrations.litellm_plugin.runtime import AdaptiveRuntime

    runtime = AdaptiveRuntime(_settings(tmp_path, "cheapest", explore_seed=3,
                                        policy={"threshold": 0.4, "accept": 0.7, "epsilon": 0.1}))
    assert runtime.router is not None


@pytest.mark.parametrize("text,expected", [
    ("checkpoint folder /srv/app/models/router does not exist", "checkpoint folder …/models/router does not exist"),
    ("'/etc/passwd' is not", "'…/etc/passwd' is not"),
    ("http://127.0.0.1:9/v1 refused", "http://127.0.0.1:9/v1 refused"),
    ("../../etc/passwd is relative", "../../etc/passwd is relative"),
])
def test_absolute_paths_are_cut_from_client_messages(text, expected) -> None:
    from adaptive_router.integrations.litellm_plugin.proxy_errors import scrub_paths

    assert scrub_paths(text) == expected
