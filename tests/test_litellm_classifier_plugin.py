"""adaptive-router as LiteLLM complexity_router's classifier plugin (classifier_type: custom)."""

from __future__ import annotations

import asyncio
import copy
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent / "integration"))
from adaptive_router.integrations.litellm_plugin.classifier_plugin import (  # noqa: E402
    AdaptiveRouterClassifier,
    complexity_router_config,
)
from adaptive_router.integrations.litellm_plugin.runtime import AdaptiveRuntime  # noqa: E402
from adaptive_router.integrations.plugin_settings import PluginSettings  # noqa: E402
from replay_fixtures import PRICES, write_fixtures  # noqa: E402

from adaptive_router.domain import Fleet  # noqa: E402
from adaptive_router.errors import ConfigError  # noqa: E402

FLEET = {"reference": "gpt-4o", "selector": "first", "models": [
    {"name": "gpt-4o", "litellm_model": "strong", "n": [1],
     "price": {"input_per_token": PRICES["gpt-4o"][0], "output_per_token": PRICES["gpt-4o"][1]}},
    {"name": "gpt-4o-mini", "litellm_model": "weak", "n": [1, 3],
     "price": {"input_per_token": PRICES["gpt-4o-mini"][0], "output_per_token": PRICES["gpt-4o-mini"][1]}},
]}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Fleet, AdaptiveRuntime]:
    folder = tmp_path_factory.mktemp("classifier")
    _, router = write_fixtures(folder)  # a prior router: gpt-4o#1 0.9, gpt-4o-mini#1 0.5, #3 0.7
    fleet_path = folder / "fleet.yaml"
    fleet_path.write_text(yaml.safe_dump(FLEET), encoding="utf-8")
    settings = PluginSettings.load({"fleet": str(fleet_path), "router": str(router)}, env={})
    return Fleet.from_yaml(fleet_path), AdaptiveRuntime(settings)


def test_config_has_one_tier_per_candidate_and_litellm_accepts_it(setup) -> None:
    from litellm.router_strategy.complexity_router.config import ComplexityRouterConfig
    from litellm.types.router import ClassifierPlugin

    fleet, service = setup
    config = complexity_router_config(fleet)
    assert config["tiers"] == {"gpt-4o#1": "strong", "gpt-4o-mini#1": "weak",
                               "gpt-4o-mini#3": {"model_name": "weak", "litellm_params": {"n": 3}}}
    assert config["fallback_tier"] == "gpt-4o#1"
    plugin = AdaptiveRouterClassifier(service)
    assert isinstance(plugin, ClassifierPlugin)
    assert copy.deepcopy(plugin) is plugin  # LiteLLM deep-copies its model list
    parsed = ComplexityRouterConfig.model_validate({**config, "classifier_plugin": plugin})
    assert parsed.resolve_classified_tier("gpt-4o-mini#3") is not None


def test_too_many_candidates_for_litellm_tiers_is_a_config_error() -> None:
    fleet = Fleet.model_validate({"models": [
        {"name": f"m{i}", "n": [1], "price": {"input_per_token": 1e-7 * (i + 1), "output_per_token": 1e-7}}
        for i in range(9)]})
    with pytest.raises(ConfigError, match="at most 8"):
        complexity_router_config(fleet)


def test_classify_returns_the_policy_choice_and_declines_unusable_prompts(setup) -> None:
    from litellm.types.router import RoutingContext

    _, service = setup

    def ctx(text: str) -> RoutingContext:
        msgs = [{"role": "user", "content": text}] if text else []
        return RoutingContext(raw_messages=msgs, structured_messages=msgs, candidate_models=[])

    assert asyncio.run(AdaptiveRouterClassifier(service, {"threshold": 0.6}).classify(ctx("2+2?"))) == "gpt-4o-mini#3"
    assert asyncio.run(AdaptiveRouterClassifier(service, {"threshold": 0.8}).classify(ctx("2+2?"))) == "gpt-4o#1"
    assert asyncio.run(AdaptiveRouterClassifier(service, {"threshold": 0.4}).classify(ctx("2+2?"))) == "gpt-4o-mini#1"
    assert asyncio.run(AdaptiveRouterClassifier(service).classify(ctx(""))) is None  # LiteLLM's fallback decides


def test_litellm_complexity_router_serves_the_chosen_tier_with_its_n(setup) -> None:
    """A real litellm.Router with an auto_router/complexity_router deployment hosting the plugin."""
    import litellm

    fleet, service = setup
    seen: list[tuple[str, int]] = []

    class Capture(litellm.CustomLLM):
        async def acompletion(self, *args, **kwargs):  # type: ignore[override]
            model = kwargs["model"]
            n = int((kwargs.get("optional_params") or {}).get("n") or 1)
            seen.append((model, n))
            return litellm.ModelResponse(model=model, choices=[
                {"index": i, "message": {"role": "assistant", "content": f"{model} {i}"}} for i in range(n)])

    old = litellm.custom_provider_map
    litellm.custom_provider_map = [{"provider": "capture", "custom_handler": Capture()}]
    try:
        from litellm.utils import custom_llm_setup

        custom_llm_setup()
        config = complexity_router_config(fleet)
        config["classifier_plugin"] = AdaptiveRouterClassifier(service, {"threshold": 0.6})
        router = litellm.Router(model_list=[
            {"model_name": "strong", "litellm_params": {"model": "capture/gpt-4o"}},
            {"model_name": "weak", "litellm_params": {"model": "capture/gpt-4o-mini"}},
            {"model_name": "smart", "litellm_params": {"model": "auto_router/complexity_router",
                                                        "complexity_router_config": config}},
        ])
        resp = asyncio.run(router.acompletion(model="smart", messages=[{"role": "user", "content": "2+2?"}]))
    finally:
        litellm.custom_provider_map = old
    assert seen == [("gpt-4o-mini", 3)]
    assert len(resp.choices) == 3
