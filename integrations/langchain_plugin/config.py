"""Loading and checking what a ``ChatAdaptiveRouter`` is built from.

The fleet, the router, the reward model and the traffic log may each be given as an object or
as a path / name. They are loaded once, when the chat model is built, and stored back as
objects, so the copies LangChain makes for ``with_config(configurable=...)`` reuse them instead
of loading them again; a wrong combination fails then, with a message that says what to pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

from adaptive_router.domain import Fleet
from adaptive_router.errors import ConfigError
from adaptive_router.reward import RewardModel
from adaptive_router.routers import load_router
from adaptive_router.routers.base import Router
from adaptive_router.traffic import TrafficLogWriter


def _load_fleet(fleet: Any, models: Mapping[str, Any]) -> Fleet:
    """A Fleet from a Fleet, a YAML path, a mapping, or (without one) the names of ``models``."""
    if isinstance(fleet, str | Path):
        fleet = Fleet.from_yaml(fleet)
    elif isinstance(fleet, Mapping):
        fleet = Fleet.from_dict(fleet)
    elif fleet is None:
        if not models:
            raise ConfigError("ChatAdaptiveRouter needs a fleet (a Fleet or a fleet YAML path) "
                              "or at least `models={name: chat model or LiteLLM name}`")
        fleet = Fleet.from_names(list(models))
    if not isinstance(fleet, Fleet):
        raise ConfigError(f"fleet must be a Fleet, a YAML path or a mapping, got {type(fleet).__name__}")
    return fleet


def _load_reward_model(reward: Any, fleet: Fleet) -> Any:
    """The reward model given, else the fleet's; a path or a name is loaded."""
    if reward is None and fleet.reward_model:
        reward = fleet.reward_model
    if isinstance(reward, str | Path):
        try:
            from adaptive_router.reward_models import load_reward_model
        except ImportError as exc:
            raise ConfigError(f"cannot load reward model {reward!r}: {exc}; pass a RewardModel "
                              "instance instead") from None
        reward = load_reward_model(str(reward))
    return reward


def resolve_specs(data: Mapping[str, Any]) -> dict[str, Any]:
    """The chat model's constructor keywords with fleet, router, reward model and traffic log
    loaded from whatever paths or names they were given as."""
    data = dict(data)
    fleet = _load_fleet(data.get("fleet"), data.get("models") or {})
    data["fleet"] = fleet
    router = data.get("router")
    if router is None:
        raise ConfigError("ChatAdaptiveRouter needs a router: a Router, a checkpoint folder, or "
                          "a baseline name (cheapest, strongest, random)")
    if isinstance(router, str | Path):
        data["router"] = load_router(router, fleet)
    data["reward_model"] = _load_reward_model(data.get("reward_model"), fleet)
    if isinstance(data.get("traffic_log"), str | Path):
        data["traffic_log"] = TrafficLogWriter(data["traffic_log"])
    return data


def check_parts(fleet: Fleet, models: Mapping[str, Any], router: Any, reward_model: Any) -> None:
    """Raise a :class:`ConfigError` naming the fix when the loaded parts do not fit together."""
    unknown = sorted(set(models) - set(fleet.model_names))
    if unknown:
        raise ConfigError(f"models {unknown} are not in the fleet {fleet.model_names}; add them "
                          "to the fleet (with their price) or drop them from `models`")
    for name, target in models.items():
        if not isinstance(target, BaseChatModel | str):
            raise ConfigError(f"models[{name!r}] must be a LangChain chat model or a LiteLLM "
                              f"model name, got {type(target).__name__}")
    if not isinstance(router, Router):
        raise ConfigError(f"router must be a Router, got {type(router).__name__}")
    if reward_model is not None and not isinstance(reward_model, RewardModel):
        raise ConfigError("reward_model must be an adaptive_router.reward.RewardModel, got "
                          f"{type(reward_model).__name__}")
