"""What the proxy plugin knows about one request, typed, from parse to the traffic log line.

LiteLLM calls the plugin's hooks separately (before the call, after it, for headers, for a
stream's chunks, on failure), handing each the request's ``data`` dict. :class:`RoutedRequest`
is what parsing the request found; :class:`RequestState` adds the decision and what the rewrite
did, and is kept in the request's LiteLLM metadata under :data:`STATE_KEY` so that every later
hook reads the same object (the decision as a :class:`~adaptive_router.domain.Decision`, never
re-serialised between hooks).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from adaptive_router.domain import Decision
from adaptive_router.served_cascade import ServedPlan

STATE_KEY = "adaptive_router_state"


@dataclass(frozen=True)
class RoutedRequest:
    """A request for a routing alias, parsed and checked (a 400 before any model work)."""

    alias: str
    call: str
    # kept out of repr: a logging sink that stringifies LiteLLM's metadata must not see the prompt
    messages: list[dict[str, Any]] = field(repr=False)
    knob: dict[str, float]
    stream: bool
    defaults_from: list[str]
    t0: float


@dataclass
class RequestState:
    """One routed request between the LiteLLM hooks."""

    request: RoutedRequest
    decision: Decision
    group: str  # the model group called (after a cooldown skip or a failover: the one that served)
    decided_group: str  # the group decided before any cooldown skip: what a failover is counted against
    request_id: str
    generation: int  # the runtime generation that decided (hot reload keeps it until the request ends)
    injected_usage: bool = False
    failover: list[dict[str, Any]] = field(default_factory=list)
    cascade: ServedPlan | None = None
    result: dict[str, Any] | None = None
    headers: dict[str, str] | None = None
    logged_failure: bool = False

    @property
    def call(self) -> str:
        return self.request.call

    @property
    def stream(self) -> bool:
        return self.request.stream


def state_of(data: Mapping[str, Any]) -> RequestState | None:
    """The plugin's state of a routed request (None for a request the plugin did not route)."""
    for name in ("metadata", "litellm_metadata"):
        md = data.get(name)
        if isinstance(md, Mapping) and isinstance(md.get(STATE_KEY), RequestState):
            return md[STATE_KEY]
    return None


def annotate(data: Mapping[str, Any], body: Mapping[str, Any]) -> None:
    """Complete the request's ``adaptive_router`` metadata entry (what LiteLLM's logging payload
    and its sinks see) with what was served."""
    for name in ("metadata", "litellm_metadata"):
        md = data.get(name)
        if isinstance(md, dict) and isinstance(md.get("adaptive_router"), dict) and STATE_KEY in md:
            md["adaptive_router"].update({k: v for k, v in body.items() if k != "decision"})
