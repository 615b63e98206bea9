"""adaptive-router as the classifier of LiteLLM's own ``auto_router/complexity_router``.

LiteLLM (>= 1.100) lets a complexity router delegate its tier decision to a *classifier plugin*
(``classifier_type: custom``): an object with ``async classify(context) -> tier name | None``.
This module is such a plugin. Each candidate (model, n) of the fleet becomes one operator-defined
tier named by its key (``gpt-4o-mini#3``) whose pool is the model's group with ``n`` as a
per-tier request parameter, so LiteLLM's router draws the n samples and keeps its own tier
machinery (pools, health fallbacks, spend-log ``routing_decision``); the router and policy of
this package choose the tier. :func:`complexity_router_config` writes that block::

    model_list:
      - model_name: smart-router
        litellm_params:
          model: auto_router/complexity_router
          complexity_router_config:        # complexity_router_config(fleet) writes this block
            classifier_type: custom
            classifier_plugin: adaptive_router.integrations.litellm_plugin.classifier_plugin.classifier
            tier_definitions: [{name: "gpt-4o-mini#1", description: ...}, ...]
            fallback_tier: "gpt-4o#1"
            tiers: {"gpt-4o-mini#1": gpt-4o-mini, "gpt-4o-mini#3": {model_name: gpt-4o-mini,
                    litellm_params: {n: 3}}, "gpt-4o#1": gpt-4o}
    litellm_settings:
      adaptive_router: {fleet: fleet.yaml, router: default, policy: {threshold: 0.5}}

The plugin reads the same ``litellm_settings.adaptive_router`` block as the proxy hook (fleet,
router, policy knob; loaded on the first request). What the hosted mode does not do: pick the
best of n samples with the reward model (the client gets all n choices), attach the decision and
dollar cost to the response, write the traffic log, explore, or cascade: those need the proxy
hook (``callbacks: [adaptive_router.integrations.litellm_plugin.proxy_hook.proxy_handler]``).
The plugin never raises into LiteLLM: a failure returns None, and LiteLLM's
``classifier_fallback`` decides (with ``tier_definitions`` that is ``fallback_tier``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from adaptive_router.domain import Fleet
from adaptive_router.errors import ConfigError
from adaptive_router.prompts import prompt_from_messages

log = logging.getLogger("adaptive_router.litellm")

#: The dotted path LiteLLM's proxy resolves ``classifier_plugin`` to (the module-level instance).
CLASSIFIER_PATH = "adaptive_router.integrations.litellm_plugin.classifier_plugin.classifier"
#: LiteLLM 1.106's bounds on ``tier_definitions`` (complexity_router/config.py).
MIN_TIERS, MAX_TIERS = 2, 8


def _messages(context: Any) -> Sequence[Mapping[str, Any]]:
    structured = getattr(context, "structured_messages", None) or []
    return structured or getattr(context, "raw_messages", None) or []


def _proxy_model_list() -> list[dict[str, Any]] | None:
    """The running proxy's ``model_list`` (None outside a proxy)."""
    try:
        from litellm.proxy import proxy_server
    except Exception:  # the SDK without the proxy extras
        return None
    router = getattr(proxy_server, "llm_router", None)
    return list(getattr(router, "model_list", None) or []) or None


class AdaptiveRouterClassifier:
    """A LiteLLM ``ClassifierPlugin``: returns the key of the candidate this package's router picks.

    Parameters
    ----------
    service: a :class:`adaptive_router.service.RoutingService` (anything with ``decide(prompt,
        knob)``); None = built on first use from ``litellm_settings.adaptive_router``.
    knob: the policy knob, e.g. ``{"threshold": 0.5}``; None = the service's default.
    """

    def __init__(self, service: Any = None, knob: Mapping[str, float] | None = None) -> None:
        self._service = service
        self.knob = dict(knob) if knob is not None else None
        self._lock = threading.Lock()

    def __deepcopy__(self, memo: dict[int, Any]) -> AdaptiveRouterClassifier:
        # LiteLLM deep-copies the model list, resolved plugin included: share the one instance
        # (and its loaded router) instead of copying a lock
        return self

    def __copy__(self) -> AdaptiveRouterClassifier:
        return self

    def service(self) -> Any:
        if self._service is None:
            with self._lock:
                if self._service is None:
                    from adaptive_router.integrations.litellm_plugin.runtime import AdaptiveRuntime
                    from adaptive_router.integrations.plugin_settings import PluginSettings

                    # deployment prices (model_info) win over the price map, as in the proxy hook
                    self._service = AdaptiveRuntime(PluginSettings.load(), _proxy_model_list())
        return self._service

    def tier_for(self, messages: Sequence[Mapping[str, Any]] | str) -> str:
        """The tier name (candidate key) for ``messages``; raises on an unusable prompt."""
        service = self.service()
        prompt = messages if isinstance(messages, str) else prompt_from_messages(messages)
        knob = self.knob if self.knob is not None else {}
        return service.decide(prompt, knob).candidate.key

    async def classify(self, context: Any) -> str | None:
        """LiteLLM's ``ClassifierPlugin.classify``: the tier, or None to let its fallback decide."""
        try:
            return await asyncio.to_thread(self.tier_for, _messages(context))
        except Exception as exc:  # LiteLLM falls back to fallback_tier; say why in the proxy's log
            log.warning("adaptive_router classifier plugin declined: %s: %s", type(exc).__name__, exc)
            return None


def complexity_router_config(fleet: Fleet, fallback: str | None = None,
                             plugin_path: str = CLASSIFIER_PATH) -> dict[str, Any]:
    """The ``complexity_router_config`` hosting the plugin: one tier per candidate of ``fleet``.

    ``fallback`` is the tier served when the plugin declines (default: the reference model's
    single-sample candidate). Tier pools name each model's LiteLLM group (``litellm_model`` in the
    fleet file); candidates with n > 1 carry ``n`` as a per-tier request parameter.
    """
    keys = list(fleet.candidate_keys)
    if not MIN_TIERS <= len(keys) <= MAX_TIERS:
        raise ConfigError(
            f"LiteLLM's complexity_router takes {MIN_TIERS} to {MAX_TIERS} tiers (tier_definitions) and "
            f"this fleet has {len(keys)} candidates ({', '.join(keys)}); host a fleet file with at most "
            f"{MAX_TIERS} (model, n) candidates, or serve this fleet with the proxy hook instead")
    tiers: dict[str, Any] = {}
    definitions = []
    for cand in fleet.candidates:
        group = fleet.model(cand.model).call_name
        tiers[cand.key] = group if cand.n == 1 else {"model_name": group, "litellm_params": {"n": cand.n}}
        definitions.append({"name": cand.key, "description": f"{cand.n} sample(s) of {cand.model}"})
    fallback = fallback or f"{fleet.reference_model()}#1"
    if fallback not in keys:
        fallback = keys[-1]
    return {"classifier_type": "custom", "classifier_plugin": plugin_path,
            "tier_definitions": definitions, "fallback_tier": fallback, "tiers": tiers}


#: The instance ``classifier_plugin:`` names in config.yaml.
classifier = AdaptiveRouterClassifier()

__all__ = ["CLASSIFIER_PATH", "AdaptiveRouterClassifier", "classifier", "complexity_router_config"]
