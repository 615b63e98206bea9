"""The routing decision in LiteLLM's own logging payload.

LiteLLM's place for a pre-routing decision is ``StandardLoggingPayload.metadata.routing_decision``
(spend logs and every logging sink show it beside LiteLLM's own routers' decisions). Its Router
clears ``metadata.routing_decision`` on every attempt that is not one of its auto-routers, so the
pre-call hook leaves the decision under :data:`ROUTING_DECISION_KEY` and
:func:`add_routing_decision` (the hook's ``async_logging_hook``) moves it into the payload.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from adaptive_router.domain import Decision

log = logging.getLogger("adaptive_router.litellm")

ROUTING_DECISION_KEY = "adaptive_router_routing_decision"


def routing_decision(alias: str, group: str, decision: Decision) -> dict[str, Any]:
    """The decision as LiteLLM's ``StandardLoggingRoutingDecision`` (the fields that mean the same
    here): the public alias, the model group called, the candidate as the tier (``model#n``), its
    predicted quality as the score, and the router's predictions of every candidate."""
    return {
        "router_model_name": alias,
        "routed_model": group,
        "tier": decision.candidate.key,
        "tier_label": decision.policy,
        "score": float(decision.predictions.get(decision.candidate.key, 0.0)),
        "classifier_model": decision.router,
        "classifier_probabilities": {k: float(v) for k, v in decision.predictions.items()},
        "escalated": False,
        "signals": [decision.reason] + (["explored"] if decision.explored else []),
    }


def add_routing_decision(kwargs: dict, result: Any) -> tuple[dict, Any]:
    """Put the request's decision in ``standard_logging_object.metadata.routing_decision``.

    LiteLLM builds the payload before its logging hooks run and hands that same payload to
    every success callback (spend logs, Prometheus, OpenTelemetry, S3...) after them, so this
    is the one point where the field can be filled for all of them."""
    try:
        payload = kwargs.get("standard_logging_object")
        md = (kwargs.get("litellm_params") or {}).get("metadata") or kwargs.get("metadata") or {}
        if not isinstance(md, Mapping):
            return kwargs, result
        found = md.get(ROUTING_DECISION_KEY)
        if found is None:
            lm = (kwargs.get("litellm_params") or {}).get("litellm_metadata")
            found = lm.get(ROUTING_DECISION_KEY) if isinstance(lm, Mapping) else None
        if isinstance(payload, dict) and isinstance(found, Mapping):
            meta = payload.get("metadata")
            if isinstance(meta, dict) and not meta.get("routing_decision"):
                meta["routing_decision"] = dict(found)
    except Exception:  # logging must never fail a request
        log.exception("adaptive_router: could not add the routing decision to the logging payload")
    return kwargs, result
