"""adaptive-router: decide per prompt which model to call and how many samples to draw, keep the
best sample by a reward model, and report the dollar cost.

Importing this package is light: no network, no model, no LiteLLM or torch import. The names
below are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Price": "adaptive_router.domain",
    "Model": "adaptive_router.domain",
    "Candidate": "adaptive_router.domain",
    "Fleet": "adaptive_router.domain",
    "Decision": "adaptive_router.domain",
    "CostBreakdown": "adaptive_router.domain",
    "Record": "adaptive_router.records",
    "ModelSamples": "adaptive_router.records",
    "CostModel": "adaptive_router.cost",
    "Router": "adaptive_router.routers.base",
    "load_router": "adaptive_router.routers",
    "Policy": "adaptive_router.policy",
    "ThresholdPolicy": "adaptive_router.policy",
    "TradeoffPolicy": "adaptive_router.policy",
    "BudgetPolicy": "adaptive_router.policy",
    "RoutingEngine": "adaptive_router.engine",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'adaptive_router' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
