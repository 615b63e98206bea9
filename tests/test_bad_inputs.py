"""The bad-input matrix (issue 9) for the core and the CLI: every bad input gets a clear error of
the project's hierarchy that says what to do, and nothing crashes.

The same matrix goes through a real LiteLLM proxy in tests/integration/test_proxy_bad_inputs.py
(each case an HTTP 4xx with a JSON error); README "Reliability" lists both.
"""

from __future__ import annotations

import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from adaptive_router.cost import CostModel
from adaptive_router.domain import Fleet
from adaptive_router.engine import RoutingEngine
from adaptive_router.errors import (
    AdaptiveRouterError,
    CheckpointError,
    FleetError,
    InvalidRequestError,
    PriceNotFoundError,
    RoutingError,
)
from adaptive_router.policy import ThresholdPolicy, policy_from_knob
from adaptive_router.prompts import validate_prompt
from adaptive_router.routers import load_router
from adaptive_router.routers.baselines import CheapestRouter

FLEET = Fleet.from_dict({"reference": "large", "models": [
    {"name": "small", "n": [1, 3], "price": {"input_per_million": 0.15, "output_per_million": 0.6}},
    {"name": "large", "n": [1], "price": {"input_per_million": 2.5, "output_per_million": 10}},
]})


@pytest.fixture(scope="module")
def engine() -> RoutingEngine:
    return RoutingEngine(FLEET, CheapestRouter(FLEET.candidate_keys), ThresholdPolicy(0.5),
                         CostModel(FLEET, count_tokens=False))


def user(content) -> list[dict]:
    return [{"role": "user", "content": content}]


# -- prompts and messages -----------------------------------------------------------------------
@pytest.mark.parametrize("prompt", ["", "   \n\t  ", user(""), user("  "), user([])])
def test_empty_or_whitespace_prompt(engine, prompt) -> None:
    with pytest.raises(InvalidRequestError, match="empty or whitespace"):
        engine.decide(prompt)


def test_multimodal_parts_route_on_their_text(engine) -> None:
    parts = [{"type": "text", "text": "What is in this picture?"},
             {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]
    assert engine.router_input(user(parts)) == "What is in this picture?"
    assert engine.decide(user(parts)).candidate.key == "small#1"


def test_multimodal_without_any_text_is_rejected(engine) -> None:
    parts = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]
    with pytest.raises(InvalidRequestError, match="empty"):
        engine.decide(user(parts))


def test_200k_token_prompt_is_routed_in_bounded_time() -> None:
    """The router reads the encoder's first 256 tokens; the cost counts every token."""
    from adaptive_router.routers.linear_probe import LinearProbeRouter

    prompt = "tokens " * 200_000
    router = LinearProbeRouter(FLEET.candidate_keys)
    engine = RoutingEngine(FLEET, router, ThresholdPolicy(0.5), CostModel(FLEET))
    engine.decide("warm up: load the encoder and the tokenizer")
    t0 = time.perf_counter()
    d = engine.decide(prompt)
    elapsed = time.perf_counter() - t0
    assert elapsed < 20, elapsed  # was minutes before texts were cut to what the encoder reads
    prompt_tokens = engine.cost_model.prompt_tokens("large", prompt)
    assert prompt_tokens >= 200_000
    assert d.expected_costs_usd["large#1"] >= 200_000 * 2.5e-6


@pytest.mark.parametrize("bad", [b"caf\xe9 \xff\xfe", "lone surrogate \ud800 here"])
def test_invalid_utf8(engine, bad) -> None:
    with pytest.raises(InvalidRequestError, match="UTF-8"):
        validate_prompt(bad)
    if isinstance(bad, str):
        with pytest.raises(InvalidRequestError, match="UTF-8"):
            engine.decide(user(bad))


@pytest.mark.parametrize("messages", [
    [{"role": "system", "content": "You are helpful."}],
    [{"role": "assistant", "content": "Hello!"}, {"role": "tool", "content": "{}"}],
])
def test_messages_without_a_user_turn(engine, messages) -> None:
    with pytest.raises(InvalidRequestError, match="no user turn"):
        engine.decide(messages)


def test_messages_that_are_not_objects(engine) -> None:
    with pytest.raises(InvalidRequestError, match="must be an object"):
        engine.decide(["just a string"])
    with pytest.raises(InvalidRequestError, match="messages is empty"):
        engine.decide([])


# -- models, prices, fleets -------------------------------------------------------------------
def test_unknown_model_for_the_router() -> None:
    router = CheapestRouter(["small#1", "large#1"])  # knows nothing of small#3
    with pytest.raises(RoutingError, match=r"does not predict for \['small#3'\].*Retrain"):
        RoutingEngine(FLEET, router)
    with pytest.raises(FleetError, match="not in the fleet"):
        FLEET.model("gpt-9")


def test_missing_price() -> None:
    fleet = Fleet.from_dict({"models": [{"name": "my-private-model-xyz"}]})
    with pytest.raises(PriceNotFoundError) as err:
        CostModel(fleet)
    assert "my-private-model-xyz" in str(err.value) and "price" in str(err.value)


def test_fleet_with_no_candidates() -> None:
    with pytest.raises(FleetError, match="no models"):
        Fleet.from_dict({"models": []})
    with pytest.raises(FleetError, match="must list at least one sample count"):
        Fleet.from_dict({"models": [{"name": "gpt-4o", "n": []}]})


def test_n_above_the_providers_maximum() -> None:
    with pytest.raises(FleetError, match="exceeds the provider's maximum max_n=4"):
        Fleet.from_dict({"models": [{"name": "gpt-4o", "n": [1, 8], "max_n": 4}]})
    with pytest.raises(FleetError, match="sample counts must be >= 1"):
        Fleet.from_dict({"models": [{"name": "gpt-4o", "n": [0]}]})


# -- knobs --------------------------------------------------------------------------------------
@pytest.mark.parametrize("knob,match", [
    ({"budget_usd": -0.01}, "cannot be negative"),
    ({"threshold": 1.5}, r"threshold must be within \[0, 1\]"),
    ({"threshold": float("nan")}, "threshold must be within"),
    ({"threshold": "high"}, "threshold must be a number"),
    ({"tradeoff": -1}, "tradeoff must be within"),
    ({"temperature": 0.3}, "unknown routing knob"),
    ({"threshold": 0.3, "budget_usd": 0.1}, "exactly one"),
])
def test_knobs_outside_bounds_are_rejected(engine, knob, match) -> None:
    with pytest.raises(InvalidRequestError, match=match):
        policy_from_knob(knob)
    with pytest.raises(InvalidRequestError, match=match):
        engine.decide("What is 2 + 2?", knob=knob)


# -- files ----------------------------------------------------------------------------------------
def test_malformed_fleet_yaml(tmp_path) -> None:
    bad = tmp_path / "fleet.yaml"
    bad.write_text("models: [name: gpt-4o\n  n: {", encoding="utf-8")
    with pytest.raises(FleetError, match="not valid YAML"):
        Fleet.from_yaml(bad)
    bad.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(FleetError, match="must be a mapping"):
        Fleet.from_yaml(bad)
    bad.write_text("models:\n  - name: gpt-4o\n    temperature: 3\n", encoding="utf-8")
    with pytest.raises(FleetError, match="models.0.temperature"):
        Fleet.from_yaml(bad)


def test_malformed_plugin_settings() -> None:
    from adaptive_router.integrations.plugin_settings import PluginSettings

    from adaptive_router.errors import ConfigError

    with pytest.raises(ConfigError, match="must be a mapping"):
        PluginSettings.load(raw=["fleet.yaml"], env={})
    with pytest.raises(ConfigError, match="needs a fleet"):
        PluginSettings.load(raw={"router": "cheapest"}, env={})
    with pytest.raises(ConfigError, match="adaptive_router.policy"):
        PluginSettings.load(raw={"fleet": "f.yaml", "policy": {"threshold": 7}}, env={})
    with pytest.raises(ConfigError, match="adaptive_router.surprise"):
        PluginSettings.load(raw={"fleet": "f.yaml", "surprise": 1}, env={})


class _Boom:
    """A pickle payload that would create a marker file if it were ever unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


@pytest.mark.parametrize("layout", ["pickle-file", "pickle-folder", "pickle-as-safetensors"])
def test_pickled_checkpoint_is_refused_and_never_run(tmp_path, layout) -> None:
    marker = tmp_path / "marker.txt"
    payload = pickle.dumps(_Boom(marker), protocol=4)
    ckpt = tmp_path / "ckpt"
    if layout == "pickle-file":
        target = tmp_path / "router.pkl"
        target.write_bytes(payload)
    else:
        ckpt.mkdir()
        target = ckpt
        if layout == "pickle-folder":
            (ckpt / "pytorch_model.bin").write_bytes(payload)
        else:
            (ckpt / "config.json").write_text(json.dumps({
                "format": "adaptive-router", "format_version": 1, "kind": "router",
                "router_type": "cheapest", "params": {"candidate_keys": ["a#1"]}}))
            (ckpt / "model.safetensors").write_bytes(payload)
    with pytest.raises(CheckpointError, match="pickle"):
        load_router(target)
    assert not marker.exists()  # nothing was unpickled


@pytest.mark.parametrize("config,match", [
    ({"kind": "router", "router_type": "cheapest"}, "not an adaptive-router checkpoint"),
    ({"format": "adaptive-router", "format_version": 99, "kind": "router"}, "upgrade adaptive-router"),
    ({"format": "adaptive-router", "format_version": 1, "kind": "reward"}, "not a 'router' one"),
    ({"format": "adaptive-router", "format_version": 1, "kind": "router", "router_type": "gpt-router-9000",
      "params": {}}, "unknown router type"),
])
def test_checkpoint_with_the_wrong_schema(tmp_path, config, match) -> None:
    from safetensors.numpy import save_file

    (tmp_path / "config.json").write_text(json.dumps(config))
    save_file({"w": np.zeros(2, np.float32)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match=match):
        load_router(tmp_path)


def test_checkpoint_with_broken_json(tmp_path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_router(tmp_path)


# -- the CLI: exit 2 with the message, never a traceback ------------------------------------------
def run_main(monkeypatch, capsys, *argv: str) -> tuple[int, str]:
    from adaptive_router import cli

    monkeypatch.setattr(sys, "argv", ["adaptive-router", *argv])
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("argv,match", [
    (["route", "   ", "--router", "cheapest"], "empty or whitespace"),
    (["route", "hi", "--router", "cheapest", "--budget", "-1"], "cannot be negative"),
    (["route", "hi", "--router", "cheapest", "--threshold", "2"], "threshold must be within"),
    (["route", "hi", "--router", "/no/such/router"], "neither a checkpoint folder nor a baseline"),
])
def test_cli_exits_2_with_the_fix(monkeypatch, capsys, repo_root, argv, match) -> None:
    code, err = run_main(monkeypatch, capsys, *argv, "--fleet", str(repo_root / "examples" / "fleet.yaml"),
                         "--no-count-tokens")
    assert code == 2, err
    assert match in err
    assert "Traceback" not in err


def test_every_error_is_one_of_ours_with_a_4xx_or_5xx_status() -> None:
    for exc in (InvalidRequestError, FleetError, PriceNotFoundError, CheckpointError):
        assert issubclass(exc, AdaptiveRouterError)
        assert 400 <= exc.http_status < 500
