"""Router implementations, found by name without importing them all.

``ROUTER_CLASSES`` maps a registry name (the ``router_type`` in a checkpoint's config.json) to
``"module:Class"``; classes are imported only when asked for, so ``import adaptive_router`` stays
light. Learned routers are trained by ``adaptive_router.training`` and served from here.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adaptive_router.errors import CheckpointError, ConfigError

if TYPE_CHECKING:
    from adaptive_router.domain import Fleet
    from adaptive_router.routers.base import Router

ROUTER_CLASSES: dict[str, str] = {
    "random": "adaptive_router.routers.baselines:RandomRouter",
    "cheapest": "adaptive_router.routers.baselines:CheapestRouter",
    "strongest": "adaptive_router.routers.baselines:StrongestRouter",
    "oracle": "adaptive_router.routers.baselines:OracleRouter",
    "prior": "adaptive_router.routers.prior:PriorRouter",
    "feedback-tuned": "adaptive_router.routers.feedback_tuned:FeedbackTunedRouter",
    "fleet-heads": "adaptive_router.routers.fleet_heads:FleetHeadsRouter",
    "best-route": "adaptive_router.routers.best_route:BestRouteRouter",
    "arllm-hdp": "adaptive_router.routers.arllm:HDPRouter",
    "arllm-nir": "adaptive_router.routers.arllm:NIRRouter",
    "linear-probe": "adaptive_router.routers.linear_probe:LinearProbeRouter",
    "mf": "adaptive_router.routers.mf:MFRouter",
    "sw-ranking": "adaptive_router.routers.sw_ranking:SWRankingRouter",
    "hybrid": "adaptive_router.routers.hybrid:HybridRouter",
    "bert": "adaptive_router.routers.bert_classifier:BertClassifierRouter",
    "causal-llm": "adaptive_router.routers.causal_llm:CausalLLMRouter",
}

#: ``router_type`` values written by checkpoints saved before every registry name became
#: kebab-case. Read only when loading a checkpoint, because routers users trained earlier must
#: keep loading; names users type are mapped by the CLI alone (with a note).
SAVED_TYPE_ALIASES: dict[str, str] = {"sw_ranking": "sw-ranking", "causal_llm": "causal-llm"}

#: Baselines that need no training: built from a fleet by name.
BASELINES = ("random", "cheapest", "strongest")


def register_router(name: str, target: str) -> None:
    """Make a router class findable by name (``target`` = ``"module:Class"``)."""
    ROUTER_CLASSES[name] = target


def router_class(name: str) -> type[Router]:
    try:
        target = ROUTER_CLASSES[name]
    except KeyError:
        raise CheckpointError(
            f"unknown router type {name!r}; known: {sorted(ROUTER_CLASSES)}"
        ) from None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def load_router(spec: str | Path, fleet: Fleet | None = None, **kwargs: Any) -> Router:
    """A router from a checkpoint folder, or a baseline built for ``fleet`` by name."""
    from adaptive_router.routers.base import Router

    path = Path(spec)
    if path.exists():
        return _bind(Router.from_pretrained(path), fleet)
    name = str(spec)
    if name in BASELINES:
        if fleet is None:
            raise ConfigError(f"the {name!r} baseline needs a fleet to know its candidates")
        return router_class(name).for_fleet(fleet, **kwargs)  # type: ignore[attr-defined]
    from adaptive_router.routers.pretrained import BUNDLED_ROUTERS, default_router_path

    if name in BUNDLED_ROUTERS:
        return _bind(Router.from_pretrained(default_router_path(name)), fleet)
    raise ConfigError(
        f"--router {name!r} is neither a checkpoint folder nor a baseline "
        f"({', '.join(BASELINES)}) nor a bundled router ({', '.join(BUNDLED_ROUTERS)}); "
        "train one with `adaptive-router train --router NAME ...` "
        "and pass its output folder"
    )


def _bind(router: Router, fleet: Fleet | None) -> Router:
    """A router trained on generic strong/weak roles (the default) mapped onto ``fleet``."""
    bind = getattr(router, "bind_fleet", None)
    return bind(fleet) if bind is not None and fleet is not None else router
