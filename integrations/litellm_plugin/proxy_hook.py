"""The LiteLLM proxy plugin: adaptive routing switched on from config.yaml.

    litellm_settings:
      callbacks: ["adaptive_router.integrations.litellm_plugin.proxy_hook.proxy_handler"]
      adaptive_router:
        fleet: examples/litellm/fleet.yaml
        router: examples/litellm/router        # a checkpoint folder, or a baseline name
        traffic_log: /var/log/adaptive-router/traffic.jsonl

What happens to a request whose ``model`` is the public alias (``adaptive-router``), a threshold
alias (``adaptive-0.3``) or a named alias from the settings:

1. ``async_pre_call_hook`` reads the knob (the alias's, or ``metadata.adaptive_router`` =
   ``{"threshold": X}`` / ``{"tradeoff": X}`` / ``{"budget_usd": X}``, which wins), asks the
   router and policy for a (model, n) decision, and rewrites ``data["model"]`` to that fleet
   model's LiteLLM model group and ``data["n"]`` to n. The call then goes through the group's
   own load balancing, retries, fallbacks and cooldowns.
2. ``async_post_call_success_hook`` keeps the best of the n choices (the fleet's selector:
   reward model, majority vote or first), returns that one choice, prices the request (prompt
   once, every sample's output tokens, at the group's ``model_info`` prices) and attaches the
   body key ``adaptive_router`` (model, n, cost_usd, scores, decision...). ``usage`` keeps the
   tokens of all n samples: they were paid for. The traffic log gets one line.
3. ``async_post_call_response_headers_hook`` adds ``x-adaptive-router-model``,
   ``x-adaptive-router-n`` and ``x-adaptive-router-cost-usd``.

Cascades (``cascade:`` in the settings, issue 14) on non-streamed chat completions: the
pre-call hook plans the steps (:class:`~adaptive_router.cascade.CascadePolicy` on the router's
predictions and expected costs; the knob's ``accept`` sets the acceptance level, ``budget_usd``
caps the steps' summed expected cost) and sends step 1 as above. The success hook accounts step 1,
asks the verifier, and while a step is not accepted draws the next one through the proxy's own
router (``llm_router.acompletion`` on the step's model group: its load balancing, retries and
prices), accounted the same way. The client gets the served step's kept choice; ``usage`` counts
every step's tokens; the body key gains ``cascade`` (every step's model, n, cost, verifier score,
verdict, LiteLLM's own cost of the call) and ``cost_usd`` is the sum over steps; headers add
``x-adaptive-router-steps`` (``weak#3>strong#1``) and ``x-adaptive-router-accepted-step`` (the
served step, 1-based), and ``x-adaptive-router-cost-usd`` is the sum. ``x-litellm-response-cost``
prices step 1's call only; escalation calls carry the caller's ``user_api_key*`` and ``tags``
metadata, which LiteLLM's cost-tracking callback reads to charge a key, user and team. A
verifier or escalation failure never fails the request: the last step drawn is served (step 1's
answer when an escalation call fails) and the error is in the body's ``notes``. Streams, the Responses API and
``/v1/messages`` are routed before the call only: one step, no verifier (a stream's first step
would have to be buffered, which removes what streaming is for).

Streaming (``stream: true``) and the Responses API (``/v1/responses``) draw ONE sample: best of
n needs every sample complete before it can choose, and the Responses API has no ``n``. Their
decisions are taken among the fleet's n = 1 candidates only. A stream's headers leave before
its cost is known, so ``x-adaptive-router-cost-usd`` then carries the *expected* cost and
``x-adaptive-router-cost-basis: expected``; the realised cost arrives as the ``adaptive_router``
key of the last chunk and in the traffic log, whether or not the client asked for usage (issue
16). Requests for any other model name pass through untouched. A request the plugin cannot
route (no user turn, a knob out of range or of the wrong type, a message content that is not
text, a bad alias, n set by the client) is answered with an HTTP 400 JSON error naming the field,
before any provider call.

Per-team defaults and metrics (issue 17): the knob starts from the caller's team's, then key's,
``adaptive_router`` metadata (``user_api_key_dict.team_metadata`` / ``.metadata``: LiteLLM's key
and team tables, or the ``api_keys`` setting read by the database-free ``custom_auth``), which the
alias's knob and then the request's own override. Every decision and outcome is counted in
Prometheus (:mod:`adaptive_router.integrations.litellm_plugin.metrics`), and the decision is written to
LiteLLM's ``StandardLoggingPayload.metadata.routing_decision`` (:meth:`async_logging_hook`).

Reliability (issue 16): routed chat calls, streams included, carry the next-best candidates as
LiteLLM ``fallbacks`` and ``num_retries = failover_num_retries`` (0), and a group LiteLLM is
cooling down is skipped at decision time. The runtime is built and checked (a probe prompt through
the whole router) when the proxy starts; a failure is logged as "the plugin cannot start" and
answered 500 "misconfigured", without absolute server paths. A router folder that changes is
reloaded without a restart (``reload_check_s``); one that cannot be loaded keeps the old router.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from adaptive_router.integrations.litellm_plugin.metrics import (
    mount_metrics_route,
    observe_decision,
    observe_outcome,
)
from adaptive_router.integrations.litellm_plugin.runtime import (
    ESCALATION_PARAMS,
    AdaptiveRuntime,
    RoutedResult,
    litellm_cost,
    usage_tokens,
)
from adaptive_router.integrations.plugin_settings import PluginSettings, validate_knob
from litellm.integrations.custom_logger import CustomLogger

from adaptive_router.domain import Decision
from adaptive_router.errors import AdaptiveRouterError, CheckpointError, ConfigError, InvalidRequestError
from adaptive_router.policy import merge_knob
from adaptive_router.pricing import counter_for
from adaptive_router.prompts import content_text, prompt_from_messages, validate_messages
from adaptive_router.served_cascade import ServedPlan
from adaptive_router.traffic import TrafficLogLine
from adaptive_router.verifiers.base import Verifier

log = logging.getLogger("adaptive_router.litellm")

STATE_KEY = "adaptive_router_state"
ROUTING_DECISION_KEY = "adaptive_router_routing_decision"
CHAT_CALLS = {"completion", "acompletion"}
RESPONSES_CALLS = {"responses", "aresponses"}
ANTHROPIC_CALLS = {"anthropic_messages"}
#: Calls that return one output (no ``n``): the router picks a model with n = 1.
SINGLE_OUTPUT_CALLS = RESPONSES_CALLS | ANTHROPIC_CALLS


class PluginMisconfigured(AdaptiveRouterError):
    """The plugin's settings, fleet, router or reward model cannot be loaded: a server problem
    (HTTP 500), reported on each routed request until fixed; other model names keep working."""

    http_status = 500


#: An absolute POSIX path in a message (not a URL's path, not a relative ``../x``): what a
#: client must not learn about the server's file system.
_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~-])/(?:[^\s'\"`:,;()\[\]{}<>/]+/)*[^\s'\"`:,;()\[\]{}<>/]*")


def scrub_paths(text: str) -> str:
    """``text`` with every absolute path cut to its last two parts (``…/router/config.json``):
    enough for an operator to know which file, nothing of the server's layout. The proxy's own
    log keeps the full message."""
    def short(m: re.Match[str]) -> str:
        parts = [p for p in m.group(0).split("/") if p]
        return "…/" + "/".join(parts[-2:]) if parts else m.group(0)

    return _ABSOLUTE_PATH.sub(short, text)


def proxy_error(exc: Exception) -> Exception:
    """The exception LiteLLM's proxy turns into an OpenAI-style JSON error with our status.

    A ``ProxyException`` is passed to the client as is (status = its ``code``); anything else
    without a ``status_code`` would become a 500. Absolute server paths are cut from the message.
    """
    from litellm.proxy._types import ProxyException

    status = exc.http_status if isinstance(exc, AdaptiveRouterError) else 500
    kind = "invalid_request_error" if 400 <= status < 500 else "internal_server_error"
    message = str(exc) if isinstance(exc, AdaptiveRouterError) else (
        f"adaptive_router could not route the request: {type(exc).__name__}: {exc}")
    return ProxyException(message=scrub_paths(f"adaptive_router: {message}"), type=kind, param=None,
                          code=status)


def _bucket(data: dict[str, Any], call_type: str | None = None) -> dict[str, Any]:
    """The metadata dict LiteLLM keeps for this request (where our per-request state lives).

    The Responses and Anthropic routes keep it in ``litellm_metadata``: their ``metadata`` is the
    client's, forwarded to the provider (which would reject our keys)."""
    name = "litellm_metadata" if (call_type in SINGLE_OUTPUT_CALLS or
                                  ("litellm_metadata" in data and "messages" not in data)) else "metadata"
    md = data.get(name)
    if not isinstance(md, dict):
        md = {}
        data[name] = md
    return md


def _annotate(data: Mapping[str, Any], body: Mapping[str, Any]) -> None:
    """Complete the request's ``adaptive_router`` metadata entry with what was served."""
    for name in ("metadata", "litellm_metadata"):
        md = data.get(name)
        if isinstance(md, dict) and isinstance(md.get("adaptive_router"), dict) and STATE_KEY in md:
            md["adaptive_router"].update({k: v for k, v in body.items() if k != "decision"})


def _state(data: Mapping[str, Any]) -> dict[str, Any] | None:
    for name in ("metadata", "litellm_metadata"):
        md = data.get(name)
        if isinstance(md, Mapping) and isinstance(md.get(STATE_KEY), dict):
            return md[STATE_KEY]
    return None


def _ask_for_stream_usage(data: dict[str, Any]) -> bool:
    """Have the stream report its billed usage; LiteLLM drops that extra chunk before the client
    sees it when the client did not ask for it (its own ``_litellm_strip_stream_usage``).

    LiteLLM's stream wrapper reads ``stream_options`` from the request's logging object, which
    the proxy built before this hook ran: it is updated too. Returns whether usage was injected.
    """
    options = data.get("stream_options")
    if data.get("_litellm_strip_stream_usage") is True:
        # the proxy itself asked for usage on the client's behalf (its stream usage tracking,
        # before this hook) and will drop the usage-only chunk: the client did not ask for it,
        # so the key must ride on the finish chunk, which the client does receive
        return True
    if isinstance(options, dict) and options.get("include_usage") is True:
        return False
    data["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    data["_litellm_strip_stream_usage"] = True
    logging_obj = data.get("litellm_logging_obj")
    if logging_obj is not None and getattr(logging_obj, "stream_options", None) is None:
        try:
            logging_obj.stream_options = dict(data["stream_options"])
        except Exception:  # an internal detail of LiteLLM: without it the plugin counts tokens
            pass
    return True


def responses_input_messages(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A Responses API request's ``instructions`` + ``input`` as chat messages."""
    msgs: list[dict[str, Any]] = []
    if isinstance(data.get("instructions"), str) and data["instructions"].strip():
        msgs.append({"role": "system", "content": data["instructions"]})
    inp = data.get("input")
    if isinstance(inp, str):
        msgs.append({"role": "user", "content": inp})
    elif isinstance(inp, list):
        for i, item in enumerate(inp):
            if isinstance(item, Mapping) and "role" in item:
                content = item.get("content")
                if content is not None and not isinstance(content, str | list):
                    raise InvalidRequestError(f"input[{i}].content must be a string or a list of content "
                                              f"parts, got {type(content).__name__}")
                msgs.append({"role": item["role"], "content": content_text(content)})
    elif inp is not None:
        raise InvalidRequestError(f"input must be a string or a list of input items, got {type(inp).__name__}")
    if not msgs:
        raise InvalidRequestError("the Responses API request has no input; send input: \"...\"")
    return msgs


def _anthropic_block_text(block: Any) -> str:
    """The routable text of one Anthropic content block: text, a tool result's text, or a short
    marker for a tool call (an agent's turn is often tool results only, and is still routed)."""
    if isinstance(block, str):
        return block
    if not isinstance(block, Mapping):
        return ""
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text") or "")
    if kind == "tool_result":
        inner = block.get("content")
        return inner if isinstance(inner, str) else content_text(inner)
    if kind == "tool_use":
        return f"[tool call: {block.get('name', '?')}]"
    return ""


def _anthropic_text(content: Any) -> str:
    """A ``system`` or message ``content``: a string, or its blocks' routable texts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(t for t in (_anthropic_block_text(b) for b in content) if t)
    return ""


def anthropic_input_messages(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """An Anthropic ``/v1/messages`` request's ``system`` + ``messages`` as chat messages."""
    msgs: list[dict[str, Any]] = []
    system_text = _anthropic_text(data.get("system"))
    if system_text.strip():
        msgs.append({"role": "system", "content": system_text})
    raw = data.get("messages")
    if not isinstance(raw, list) or not raw:
        raise InvalidRequestError("messages must be a non-empty list of {role, content} objects")
    for i, m in enumerate(raw):
        if not isinstance(m, Mapping) or "role" not in m:
            raise InvalidRequestError("each message must be an object with 'role' and 'content'")
        if not isinstance(m.get("content"), str | list):
            raise InvalidRequestError(f"messages[{i}].content must be a string or a list of content "
                                      f"blocks, got {type(m.get('content')).__name__}")
        msgs.append({"role": m["role"], "content": _anthropic_text(m.get("content"))})
    return msgs


# -- cascades: what is specific to the proxy ---------------------------------------------------------
def _judge_class() -> type:
    from adaptive_router.verifiers.judge import JudgeVerifier

    class RouterJudge(JudgeVerifier):
        """``judge:<group>`` asked through the proxy's own router (its deployments, keys and
        prices), not through ``litellm.acompletion`` (which knows no proxy model group)."""

        def __init__(self, model: str, router: Any) -> None:
            super().__init__(model)
            self._router = router

        async def ascore(self, evidence: Any) -> float:
            reply = await self._router.acompletion(messages=self._messages(evidence), n=self.votes,
                                                   **self._kwargs())
            share = self._share(reply)
            # the router priced the call from the group's model_info (the price map may not
            # know the model): that is what the judge cost
            cost = litellm_cost(reply)
            if cost is not None:
                self.last_cost_usd = cost
            return float(min(1.0, max(0.0, share)))

    return RouterJudge


def _stand_in(response: Any) -> str | None:
    """The local model that answered for a replay deployment (its ``unrecorded:``), if one did."""
    hidden = getattr(response, "_hidden_params", None)
    info = hidden.get("adaptive_router_replay") if isinstance(hidden, Mapping) else None
    found = info.get("stand_in") if isinstance(info, Mapping) else None
    return str(found) if found else None


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


def caller_identity(data: Mapping[str, Any]) -> dict[str, Any]:
    """The caller's key, user, team and tags as the proxy put them in the request's metadata
    (``user_api_key*``, ``tags``): passed on with a cascade's escalation calls, which LiteLLM's
    cost-tracking callback reads to charge spend to a key, user and team."""
    md = data.get("metadata")
    if not isinstance(md, Mapping):
        return {}
    return {k: v for k, v in md.items()
            if isinstance(k, str) and (k.startswith("user_api_key") or k == "tags") and v is not None}


class ProxyRuntime(AdaptiveRuntime):
    """The runtime with the proxy's router at hand, for a ``judge:<model group>`` verifier."""

    def __init__(self, settings: PluginSettings, model_list: Any, llm_router: Any) -> None:
        super().__init__(settings, model_list)
        self._groups = {d.get("model_name") for d in (model_list or []) if isinstance(d, Mapping)}
        self._llm_router = llm_router

    def judge_verifier(self, model: str) -> Verifier:
        if model in self._groups:
            return _judge_class()(model, self._llm_router())
        return super().judge_verifier(model)


class AdaptiveRouterProxyHook(CustomLogger):
    """The proxy callback. Built lazily on the first routed request (settings, router, fleet)."""

    def __init__(self, settings: PluginSettings | None = None,
                 model_list: list[dict[str, Any]] | None = None, llm_router: Any = None) -> None:
        super().__init__()
        self._settings = settings
        self._model_list = model_list  # default: the running proxy's router.model_list
        self._llm_router = llm_router  # default: the running proxy's router (cascade escalation)
        self._runtime: AdaptiveRuntime | None = None
        self._sync_lock = threading.Lock()
        # hot reload (issue 16): the serving runtime's generation, the previous one (requests
        # decided on it finish on it), and what the router folder held when it was loaded
        self._generation = 0
        self._runtimes: dict[int, AdaptiveRuntime] = {}
        self._router_sig: Any = None
        self._router_hash: str | None = None
        self._bad_hash: str | None = None
        self._reloader: threading.Thread | None = None

    # -- lazy construction --------------------------------------------------------------------
    def settings(self) -> PluginSettings:
        if self._settings is None:
            self._settings = PluginSettings.load()
        return self._settings

    @staticmethod
    def _proxy_model_list() -> list[dict[str, Any]] | None:
        try:
            from litellm.proxy import proxy_server
        except Exception:  # pragma: no cover - the SDK without the proxy extras
            return None
        router = getattr(proxy_server, "llm_router", None)
        return list(getattr(router, "model_list", None) or []) or None

    async def runtime(self) -> AdaptiveRuntime:
        """The runtime, built on first use; any failure to build it is the server's (HTTP 500
        "misconfigured", the reason in the proxy's log), never the client's fault."""
        try:
            return await self._build_runtime()
        except PluginMisconfigured:
            raise
        except Exception as exc:
            log.error("adaptive_router: the plugin cannot start: %s: %s", type(exc).__name__, exc)
            detail = str(exc) if isinstance(exc, AdaptiveRouterError) else f"{type(exc).__name__}: {exc}"
            raise PluginMisconfigured(f"the plugin is misconfigured: {detail}") from exc

    async def _build_runtime(self) -> AdaptiveRuntime:
        if self._runtime is None:
            await asyncio.to_thread(self._build_sync)
        return self._runtime  # type: ignore[return-value]

    def _build_sync(self) -> AdaptiveRuntime:
        """Build the runtime once (a thread lock: the warm-up thread and requests may race)."""
        with self._sync_lock:
            if self._runtime is None:
                settings = self.settings()
                folder = self._router_folder(settings)
                sig = folder_signature(folder) if folder is not None else None
                runtime = self._new_runtime(settings)
                self._install(runtime, sig, folder_hash(folder) if folder is not None else None)
                log.info("adaptive_router: routing %s over %s with router %s", settings.model_name,
                         runtime.fleet.candidate_keys, runtime.router.name)
                if folder is not None and settings.reload_check_s > 0:
                    self._start_reloader(settings, folder)
        return self._runtime  # type: ignore[return-value]

    def _new_runtime(self, settings: PluginSettings) -> AdaptiveRuntime:
        model_list = self._model_list if self._model_list is not None else self._proxy_model_list()
        return ProxyRuntime(settings, model_list, self.llm_router)

    def _install(self, runtime: AdaptiveRuntime, sig: Any, digest: str | None) -> None:
        """Serve ``runtime`` from now on. The previous generation stays reachable for the requests
        it decided (their post-call accounting uses the same fleet and selector); the one before
        it is closed (its micro-batching thread stopped)."""
        self._generation += 1
        old = [g for g in self._runtimes if g < self._generation - 1]
        self._runtimes[self._generation] = runtime
        self._runtime = runtime
        self._router_sig, self._router_hash = sig, digest
        for g in old:
            retired = self._runtimes.pop(g)
            close = getattr(retired.router, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # a retired router: nothing depends on it any more
                    pass

    @staticmethod
    def _router_folder(settings: PluginSettings) -> Any:
        from pathlib import Path

        spec = Path(settings.router_spec())
        return spec if spec.is_dir() else None

    # -- hot reload ----------------------------------------------------------------------------
    def _start_reloader(self, settings: PluginSettings, folder: Any) -> None:
        """Watch the router folder: every ``reload_check_s`` its files' names, sizes and times
        are compared; a change that has settled (the same on a second look) is hashed, and new
        content is loaded and checked off the event loop, then swapped in between requests. A
        folder that cannot be loaded keeps the current router, and the reason is logged once."""
        if self._reloader is not None:
            return

        def watch() -> None:
            interval = float(settings.reload_check_s)
            while True:
                time.sleep(interval)
                try:
                    self.reload_if_changed(settings, folder, settle_s=min(0.5, interval))
                except Exception:  # the watcher must outlive any surprise
                    log.exception("adaptive_router: router reload check failed")

        self._reloader = threading.Thread(target=watch, name="adaptive-router-reload", daemon=True)
        self._reloader.start()

    def reload_if_changed(self, settings: PluginSettings, folder: Any, settle_s: float = 0.5) -> bool:
        """Load the router folder again if its content changed; True when a new router serves."""
        sig = folder_signature(folder)
        if sig is None or sig == self._router_sig:
            return False  # missing (being replaced) or unchanged
        time.sleep(settle_s)
        if folder_signature(folder) != sig:
            return False  # still being written: look again at the next tick
        digest = folder_hash(folder)
        if digest is None or digest == self._bad_hash:
            return False
        if digest == self._router_hash:
            self._router_sig = sig  # touched, same content
            return False
        try:
            runtime = self._new_runtime(settings)
        except Exception as exc:
            self._bad_hash = digest
            log.error("adaptive_router: the router folder %s changed but cannot be loaded; keeping "
                      "the current router (%s): %s: %s", folder, self._runtime.router.name if
                      self._runtime else "none", type(exc).__name__, exc)
            return False
        with self._sync_lock:
            self._install(runtime, sig, digest)
        log.warning("adaptive_router: reloaded the router from %s (content %s, router %s)",
                    folder, digest[:12], runtime.router.name)
        return True

    async def _runtime_of(self, state: Mapping[str, Any]) -> AdaptiveRuntime:
        """The runtime that decided this request (after a reload, the previous one), else the
        current one."""
        runtime = self._runtimes.get(state.get("generation"))  # type: ignore[arg-type]
        return runtime if runtime is not None else await self.runtime()

    def start_warmup(self, wait_s: float = 300.0) -> threading.Thread:
        """Build the runtime in the background as soon as the proxy has loaded its config.

        The first routed request then does not pay for loading the router (seconds for an
        encoder-based one), and a misconfiguration shows in the proxy's log at startup. Outside a
        proxy (no ``litellm.adaptive_router`` settings appear) the thread gives up quietly.
        """
        def warm() -> None:
            import sys

            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline and self._runtime is None:
                server = sys.modules.get("litellm.proxy.proxy_server")
                litellm = sys.modules.get("litellm")
                if (server is not None and getattr(server, "llm_router", None) is not None
                        and getattr(litellm, "adaptive_router", None) is not None):
                    try:
                        self._build_sync()
                    except Exception as exc:
                        log.error("adaptive_router: the plugin cannot start: %s", exc)
                    try:
                        mount_metrics_route()  # unless LiteLLM's prometheus callback serves /metrics
                    except Exception:
                        log.exception("adaptive_router: could not mount /metrics")
                    return
                time.sleep(0.5)

        thread = threading.Thread(target=warm, name="adaptive-router-warmup", daemon=True)
        thread.start()
        return thread

    def _is_ours(self, model: Any) -> bool:
        """Whether ``model`` names the plugin (raises for a malformed threshold alias)."""
        if not isinstance(model, str):
            return False
        try:
            settings = self.settings()
        except ConfigError:
            # misconfigured: still claim the obvious names so that they fail loudly, not silently
            return model == "adaptive-router" or model.startswith("adaptive-")
        return settings.knob_for_alias(model) is not None

    # -- 1. before the call -------------------------------------------------------------------
    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict,
                                  call_type: Any) -> dict | None:
        call = str(getattr(call_type, "value", call_type))
        try:
            if not self._is_ours(data.get("model")):
                return None
            return await self._route(data, call, user_api_key_dict)
        except Exception as exc:
            if not isinstance(exc, AdaptiveRouterError):
                log.exception("adaptive_router: routing failed")
            raise proxy_error(exc) from None

    @staticmethod
    def caller_defaults(user_api_key_dict: Any) -> tuple[dict[str, float], list[str]]:
        """The caller's team's, then key's, ``adaptive_router`` metadata as one knob (the key's
        wins over its team's), and where it came from (issue 17: per-team defaults).

        ``user_api_key_dict`` is LiteLLM's ``UserAPIKeyAuth``: its ``team_metadata`` and
        ``metadata`` come from LiteLLM's key and team tables, or from the plugin's ``api_keys``
        setting through the database-free ``custom_auth``. A malformed default is the operator's
        mistake, not the caller's: it is answered as a misconfiguration (HTTP 500)."""
        from adaptive_router.integrations.plugin_settings import defaults_knob

        knob: dict[str, float] = {}
        sources: list[str] = []
        for field, label in (("team_metadata", "team"), ("metadata", "key")):
            md = getattr(user_api_key_dict, field, None)
            if not isinstance(md, Mapping) or md.get("adaptive_router") is None:
                continue
            try:
                found = defaults_knob(md["adaptive_router"], where=f"{field}.adaptive_router")
            except InvalidRequestError as exc:
                raise PluginMisconfigured(f"the caller's {label} defaults are invalid: {exc}") from exc
            if found:
                knob = merge_knob(knob, found)
                sources.append(label)
        return knob, sources

    def _knob(self, data: dict, alias_knob: dict[str, float], call: str,
              defaults: Mapping[str, float] | None = None) -> dict[str, float]:
        """The caller's team/key defaults, overridden by the alias's knob, overridden by
        ``metadata.adaptive_router`` when the request has one: the most specific choice wins."""
        knob = merge_knob(dict(defaults or {}), dict(alias_knob))
        sources = [data.get("metadata"), data.get("litellm_metadata")]
        for md in sources:
            if isinstance(md, dict) and "adaptive_router" in md:
                # the Responses and Anthropic APIs forward `metadata` to the provider: take ours out
                raw = md.pop("adaptive_router") if call in SINGLE_OUTPUT_CALLS else md["adaptive_router"]
                knob = merge_knob(knob, validate_knob(raw, where="metadata.adaptive_router"))
                break
        return knob

    async def _route(self, data: dict, call: str, user_api_key_dict: Any = None) -> dict:
        t0 = time.perf_counter()
        try:
            settings = self.settings()
        except ConfigError as exc:
            raise PluginMisconfigured(f"the plugin is misconfigured: {exc}") from exc
        alias = data["model"]
        alias_knob = settings.knob_for_alias(alias) or {}
        if call in CHAT_CALLS:
            messages = validate_messages(data.get("messages"))
            n_given = data.get("n")
            if n_given not in (None, 1):
                raise InvalidRequestError(
                    f"n={n_given!r}: with model {alias!r} the router chooses how many samples to draw; "
                    "leave n out (or send a plain model name to choose n yourself)")
        elif call in RESPONSES_CALLS:
            messages = responses_input_messages(data)
        elif call in ANTHROPIC_CALLS:
            messages = anthropic_input_messages(data)
        else:
            raise InvalidRequestError(
                f"{alias!r} routes chat completions (/v1/chat/completions), the Responses API "
                f"(/v1/responses) and Anthropic messages (/v1/messages); this endpoint ({call}) is "
                "not supported")
        prompt = prompt_from_messages(messages)  # a clear 400 before any model work
        defaults, default_sources = self.caller_defaults(user_api_key_dict)
        knob = self._knob(data, alias_knob, call, defaults)
        stream = data.get("stream")
        if stream is not None and not isinstance(stream, bool):  # "false" would be truthy
            raise InvalidRequestError(f"stream must be true or false, got {type(stream).__name__} "
                                      f"{stream!r}")
        stream = bool(stream)
        runtime = await self.runtime()
        generation = self._generation
        cascade = runtime.cascade_policy(knob)  # validates `accept` even where it cannot apply
        plan: ServedPlan | None = None
        if cascade is not None and call in CHAT_CALLS and not stream:
            # the router's predictions propose the steps; exploration, if any, acts on step 1
            base = await runtime.adecide(messages, {**knob, "epsilon": 0.0})
            plan = runtime.plan_cascade(base, knob, cascade)
            decision = plan.decision
        else:
            try:
                decision = await runtime.adecide(messages, knob,
                                                 single_sample=stream or call in SINGLE_OUTPUT_CALLS)
            except (ConfigError, CheckpointError) as exc:  # the router's files, not the request
                log.error("adaptive_router: the router failed: %s", exc)
                raise PluginMisconfigured(f"the plugin is misconfigured: {exc}") from exc
        group = runtime.group_of(decision.model)
        decided_group = group  # before any cooling-down skip: what a fallback is counted against
        data["model"] = group
        fallbacks = []
        if settings.failover and call in CHAT_CALLS and "fallbacks" not in data:
            # the chosen deployment errors or times out: LiteLLM moves on to these (issue 9).
            # A stream too (issue 16): a connection that fails has sent the client nothing yet,
            # and its decision was taken among n = 1 candidates, so are its fallbacks.
            from adaptive_router.integrations.litellm_plugin.failover import plan_fallbacks

            fallbacks = plan_fallbacks(runtime, decision, knob)
            if stream:
                fallbacks = [{"model": f["model"], "n": 1} for f in fallbacks if int(f.get("n") or 1) == 1]
            if fallbacks and plan is None:
                # respect LiteLLM's cooldowns: a group cooling down after failures would only be
                # refused; the next-best candidate is routed to at once (issue 16)
                from adaptive_router.integrations.litellm_plugin.failover import (
                    cooled_down_groups,
                    skip_cooling,
                )

                cooling = await cooled_down_groups(self._router_or_none(),
                                                   [group, *(f["model"] for f in fallbacks)])
                if cooling:
                    decision, group, fallbacks = skip_cooling(runtime, decision, group, fallbacks, cooling)
                    data["model"] = group
            if stream:
                fallbacks = [{"model": f["model"]} for f in fallbacks]
            if fallbacks:
                data["fallbacks"] = fallbacks
                if settings.failover_num_retries is not None and "num_retries" not in data:
                    # with a next candidate waiting, retrying a failed deployment (LiteLLM's
                    # default: 2 retries with back-off, 4-7 s on a dead one) only delays the answer
                    data["num_retries"] = settings.failover_num_retries
        injected_usage = False
        if call in CHAT_CALLS:
            if decision.n > 1:
                data["n"] = decision.n
            else:
                data.pop("n", None)
            injected_usage = _ask_for_stream_usage(data) if stream else False
        bucket = _bucket(data, call)
        # LiteLLM's logging payload (and the sinks it feeds) see the decision under the same key
        # as the response body; the request's knob, already read, is kept beside it.
        report = {"decision": decision.as_dict(), "knob": knob, "alias": alias}
        if default_sources:
            report["defaults_from"] = default_sources
        bucket["adaptive_router"] = report
        # LiteLLM's own place for a pre-routing decision is StandardLoggingPayload.metadata
        # .routing_decision (spend logs and sinks show it beside its own routers' decisions). Its
        # Router clears metadata.routing_decision on every attempt that is not one of its
        # auto-routers, so the decision waits here and async_logging_hook puts it in the payload.
        bucket[ROUTING_DECISION_KEY] = routing_decision(alias, group, decision)
        if isinstance(bucket.get("requester_metadata"), dict):  # what the logging payload copies
            bucket["requester_metadata"]["adaptive_router"] = report
        bucket[STATE_KEY] = {
            "alias": alias,
            "call": call,
            "knob": knob,
            "stream": stream,
            "decision": decision.model_dump(mode="json"),
            "group": group,
            "t0": t0,
            "request_id": str(data.get("litellm_call_id") or uuid.uuid4().hex),
            "generation": generation,
            "prompt_chars": len(prompt),
            "injected_usage": call in CHAT_CALLS and injected_usage,
            "fallbacks": fallbacks,
            "cascade": plan.as_state() if plan is not None else None,
            "decided_group": decided_group,
        }
        observe_decision(alias, report["decision"], time.perf_counter() - t0)
        return data

    # -- logging: the decision in LiteLLM's standard logging payload ----------------------------
    async def async_logging_hook(self, kwargs: dict, result: Any, call_type: str) -> tuple[dict, Any]:
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

    # -- 2. after the call ----------------------------------------------------------------------
    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: Any, response: Any) -> Any:
        state = _state(data)
        if state is None or state.get("result") is not None:
            return None
        try:
            result = await self._finish(data, state, response)
        except Exception as exc:  # the answer is already paid for: serve it, report the problem
            log.exception("adaptive_router: post-processing failed")
            state["result"] = {"error": f"{type(exc).__name__}: {exc}"}
            return None
        try:
            if isinstance(response, dict):  # Anthropic /v1/messages responses are plain dicts
                response["adaptive_router"] = result.body()
            else:
                response.adaptive_router = result.body()
        except Exception:  # a response type without free attributes: keep the headers at least
            log.warning("adaptive_router: cannot attach the body key to %s", type(response).__name__)
        state["headers"] = result.headers()
        state["result"] = result.body()
        _annotate(data, result.body())
        return response

    def _messages(self, data: Mapping[str, Any], call: str) -> list[dict[str, Any]]:
        if call in RESPONSES_CALLS:
            return responses_input_messages(data)
        if call in ANTHROPIC_CALLS:
            return anthropic_input_messages(data)
        return list(data.get("messages") or [])

    async def _finish(self, data: dict, state: dict, response: Any) -> RoutedResult:
        runtime = await self._runtime_of(state)
        decision = Decision.model_validate(state["decision"])
        messages = self._messages(data, state["call"])
        from adaptive_router.integrations.litellm_plugin.failover import account_fallback, served_fallback

        entry = served_fallback(response, state["group"], state.get("fallbacks"))
        if entry is not None:  # a fallback served it: account for what was really paid
            decision, state["group"] = account_fallback(runtime, decision, state["group"], entry)
            state["decision"] = decision.model_dump(mode="json")
        result = await runtime.aaccount(decision, state["group"], messages, response,
                                        request_id=state["request_id"],
                                        single_output=state["call"] in SINGLE_OUTPUT_CALLS)
        stand_in = _stand_in(response)
        if stand_in is not None:
            # said in the body and the traffic log: these samples are not the routed model's, and
            # retraining on them as if they were would teach the router the wrong model's quality
            result.notes.append(f"unrecorded prompt: answered by {stand_in} standing in for "
                                f"{decision.model} (replay deployment's unrecorded:), priced as {decision.model}")
        if state.get("cascade"):
            result, logged = await self._cascade(runtime, data, state, messages, decision, response, result)
        else:
            logged = result
        await runtime.awrite_log(self._log_line(runtime, data, state, messages, logged))
        return result

    def _router_or_none(self) -> Any:
        """The LiteLLM router (for its cooldowns), or None outside a proxy."""
        try:
            return self.llm_router()
        except Exception:
            return None

    # -- cascades ---------------------------------------------------------------------------------
    def llm_router(self) -> Any:
        """The LiteLLM router that escalation calls go through: the running proxy's (its model
        groups' load balancing, retries, cooldowns and prices), or the one given to __init__."""
        if self._llm_router is not None:
            return self._llm_router
        from litellm.proxy import proxy_server

        router = getattr(proxy_server, "llm_router", None)
        if router is None:
            raise ConfigError("no LiteLLM router to escalate through (is the proxy running?)")
        return router

    async def _cascade(self, runtime: AdaptiveRuntime, data: dict, state: dict,
                       messages: list[dict[str, Any]], decision: Decision, response: Any,
                       first: RoutedResult) -> tuple[RoutedResult, RoutedResult]:
        """Run the cascade from the call the proxy made (step 1), escalating through the proxy's
        router with the client's sampling parameters; see :meth:`AdaptiveRuntime.acascade`."""
        plan = runtime.served_plan(state["cascade"], decision)  # a fallback may have served step 1
        request = {k: data[k] for k in ESCALATION_PARAMS if data.get(k) is not None}
        identity = caller_identity(data)

        async def call(group: str, n: int, index: int) -> Any:
            kwargs = dict(request)
            if n > 1:
                kwargs["n"] = n
            return await self.llm_router().acompletion(
                model=group, messages=messages,
                metadata={**identity, "adaptive_router_cascade_step": index + 1,
                          "adaptive_router_request_id": state["request_id"]}, **kwargs)

        return await runtime.acascade(plan, messages, response, first, call, state["request_id"])

    def _log_line(self, runtime: AdaptiveRuntime, data: Mapping[str, Any], state: Mapping[str, Any],
                  messages: list[dict[str, Any]], result: RoutedResult | None,
                  error: str | None = None) -> TrafficLogLine:
        """The request's traffic log line; its outcome (cost, saving, escalations, fallback or
        failure) is counted in the Prometheus metrics from the same line, so the two agree."""
        line = self._build_log_line(runtime, data, state, messages, result, error)
        try:
            observe_outcome(line, runtime.fleet.reference_model(), state.get("decided_group"))
        except Exception:  # metrics must never fail a request that was served
            log.exception("adaptive_router: could not update the metrics")
        return line

    def _build_log_line(self, runtime: AdaptiveRuntime, data: Mapping[str, Any], state: Mapping[str, Any],
                        messages: list[dict[str, Any]], result: RoutedResult | None,
                        error: str | None = None) -> TrafficLogLine:
        return runtime.traffic_line(
            request_id=state["request_id"], decision=Decision.model_validate(state["decision"]),
            group=state["group"], messages=messages, result=result,
            latency_s=time.perf_counter() - float(state["t0"]), error=error,
            alias=state["alias"], knob=state["knob"], call=state["call"], stream=state["stream"],
            user=data.get("user"),
        )

    # -- 3. headers -----------------------------------------------------------------------------
    async def async_post_call_response_headers_hook(self, data: dict, user_api_key_dict: Any,
                                                    response: Any, request_headers: Any = None,
                                                    litellm_call_info: Any = None) -> dict[str, str] | None:
        state = _state(data)
        if state is None:
            return None
        if state.get("headers"):
            return dict(state["headers"])
        decision = state["decision"]
        cand = dict(decision["candidate"])
        if response is not None and state.get("stream"):
            # a stream's headers leave after its connection opened: when a fallback opened it,
            # say which model serves (and its expected cost), not the one that failed
            from adaptive_router.integrations.litellm_plugin.failover import served_group

            group = served_group(response)
            model = self._runtime.model_of_group(group) if group and self._runtime is not None else None
            if group != state["group"] and model is not None:
                cand = {"model": model, "n": 1}
        headers = {"x-adaptive-router-model": str(cand["model"]), "x-adaptive-router-n": str(cand["n"])}
        if response is not None and state.get("stream"):
            expected = decision["expected_costs_usd"].get(f"{cand['model']}#{cand['n']}", 0.0)
            headers["x-adaptive-router-cost-usd"] = f"{float(expected):.10f}"
            headers["x-adaptive-router-cost-basis"] = "expected"
        return headers

    # -- failures -------------------------------------------------------------------------------
    async def async_post_call_failure_hook(self, request_data: dict, original_exception: Exception,
                                           user_api_key_dict: Any, traceback_str: str | None = None) -> Any:
        state = _state(request_data)
        if state is None or state.get("logged_failure"):
            return None
        state["logged_failure"] = True
        try:
            runtime = await self._runtime_of(state)
            messages = self._messages(request_data, state["call"])
            await runtime.awrite_log(self._log_line(
                runtime, request_data, state, messages, None,
                error=f"{type(original_exception).__name__}: {str(original_exception)[:500]}"))
        except Exception:
            log.exception("adaptive_router: could not log a failed request")
        return None

    # -- streaming ------------------------------------------------------------------------------
    async def async_post_call_streaming_iterator_hook(self, user_api_key_dict: Any, response: Any,
                                                      request_data: dict) -> AsyncGenerator[Any, None]:
        state = _state(request_data)
        if state is None:
            async for item in response:
                yield item
            return
        from adaptive_router.integrations.litellm_plugin.failover import served_group

        parts: list[str] = []
        usage: Any = None
        held: list[Any] = []  # from the chunk that finishes the choice on: sent after accounting
        served = served_group(response)  # a failover may have served the stream (issue 16)
        async for chunk in response:
            if served is None:
                served = served_group(chunk)
            piece, chunk_usage, finished = _chunk_text_and_usage(chunk)
            if piece:
                parts.append(piece)
            if chunk_usage is not None:  # Anthropic streams report input and output apart: merge
                both = isinstance(usage, Mapping) and isinstance(chunk_usage, Mapping)
                usage = {**usage, **chunk_usage} if both else chunk_usage
            if held or finished:
                held.append(chunk)
            else:
                yield chunk
        try:
            body = await self._finish_stream(request_data, state, "".join(parts), usage, served)
            if held and body is not None:
                _attach_to_stream_end(held, body, usage, injected=bool(state.get("injected_usage")))
        except Exception:
            log.exception("adaptive_router: could not account a streamed response")
        for chunk in held:
            yield chunk

    async def _finish_stream(self, data: dict, state: dict, text: str, usage: Any,
                             served: str | None = None) -> dict[str, Any] | None:
        runtime = await self._runtime_of(state)
        decision = Decision.model_validate(state["decision"])
        if served is not None and served != state["group"]:  # a fallback served it: price that
            from adaptive_router.integrations.litellm_plugin.failover import account_fallback

            entry = next((f for f in state.get("fallbacks") or () if f.get("model") == served),
                         {"model": served})
            decision, state["group"] = account_fallback(runtime, decision, state["group"],
                                                        {**entry, "n": 1})
            state["decision"] = decision.model_dump(mode="json")
        messages = self._messages(data, state["call"])
        holder = {"usage": usage}
        prompt_tokens, completion = usage_tokens(holder)
        notes = []
        model = runtime.fleet.model(decision.model)
        if prompt_tokens is None:
            prompt_tokens = runtime.cost_model.prompt_tokens(decision.model, messages)
            notes.append("streamed without usage: prompt tokens counted by the plugin "
                         "(send stream_options: {include_usage: true} for billed counts)")
        if completion is None:
            completion = counter_for(model.price_model or model.call_name, model.tokenizer).count_text(text)
            notes.append("streamed without usage: output tokens counted from the text")
        cost = runtime.realised_cost(decision.model, prompt_tokens, [completion])
        result = RoutedResult(
            decision=decision, model_group=state["group"], chosen_index=0, samples=[text], scores=[],
            selector="first", prompt_tokens=int(prompt_tokens), output_tokens=[int(completion)],
            cost_usd=cost.total_usd, input_cost_usd=cost.input_cost_usd,
            output_cost_usd=cost.output_cost_usd, request_id=state["request_id"], notes=notes,
        )
        state["result"] = result.body()
        _annotate(data, result.body())
        await runtime.awrite_log(self._log_line(runtime, data, state, messages, result))
        return result.body()


def folder_signature(folder: Any) -> tuple[tuple[str, int, int], ...] | None:
    """Every file of ``folder`` as (relative path, size, modification time): a cheap look that
    changes whenever a file is written; None when the folder does not exist (being replaced)."""
    from pathlib import Path

    root = Path(folder)
    if not root.is_dir():
        return None
    out = []
    try:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                st = p.stat()
                out.append((str(p.relative_to(root)), st.st_size, st.st_mtime_ns))
    except OSError:  # a file vanished while listing: the folder is being replaced
        return None
    return tuple(out)


def folder_hash(folder: Any) -> str | None:
    """A BLAKE2b digest of the folder's file names and contents (what decides a reload: a copy
    of the same checkpoint, with new times, is not a new router)."""
    import hashlib
    from pathlib import Path

    root = Path(folder)
    if not root.is_dir():
        return None
    h = hashlib.blake2b(digest_size=16)
    try:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                h.update(str(p.relative_to(root)).encode() + b"\0")
                with p.open("rb") as fh:
                    for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                        h.update(block)
                h.update(b"\0")
    except OSError:
        return None
    return h.hexdigest()


def _attach_to_stream_end(held: list[Any], body: dict[str, Any], usage: Any, injected: bool) -> None:
    """Put the ``adaptive_router`` key on the stream's last chunks the client receives.

    When the plugin asked for usage (the client did not), LiteLLM drops the usage-only chunk, so
    the finish chunk carries both ``usage`` and the key; when the client asked, the usage chunk
    it receives carries the key. LiteLLM's fast chunk serializer writes only the standard fields,
    so the chosen chunk must hold ``usage`` (or ``provider_specific_fields``) to be serialized in
    full, extra key included.
    """
    usage_chunk = next((c for c in reversed(held) if getattr(c, "usage", None) is not None), None)
    if usage_chunk is not None and not injected:
        target = usage_chunk
    else:
        target = held[0]
        if usage is not None and getattr(target, "usage", None) is None:
            target.usage = usage
        elif usage is None:
            target.provider_specific_fields = {"adaptive_router": body}
    target.adaptive_router = body


def _anthropic_sse_text_and_usage(chunk: bytes | str) -> tuple[str, Any, bool]:
    """(text, usage, False) of the Server-Sent Events of an Anthropic ``/v1/messages`` stream.

    ``message_start`` carries the input tokens, ``message_delta`` the output tokens; text comes
    in ``content_block_delta`` events. Raw SSE bytes cannot carry an extra key, so nothing is
    held back for one (the answer never "ends" here)."""
    raw = chunk.decode("utf-8", "replace") if isinstance(chunk, bytes) else chunk
    text: list[str] = []
    usage: dict[str, Any] = {}
    for line in raw.splitlines():
        if not line.startswith("data:"):
            continue
        try:
            event = json.loads(line[5:].strip())
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        kind = event.get("type")
        if kind == "content_block_delta" and isinstance(event.get("delta"), dict):
            text.append(str(event["delta"].get("text") or ""))
        elif kind == "message_start" and isinstance(event.get("message"), dict):
            usage.update(event["message"].get("usage") or {})
        elif kind == "message_delta" and isinstance(event.get("usage"), dict):
            usage.update({k: v for k, v in event["usage"].items() if v is not None})
    return "".join(text), (usage or None), False


def _chunk_text_and_usage(chunk: Any) -> tuple[str, Any, bool]:
    """(text delta, usage or None, whether the answer ends here) of a chat stream chunk, a
    Responses API stream event or a piece of an Anthropic messages event stream."""
    def get(obj: Any, name: str) -> Any:
        return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)

    if isinstance(chunk, bytes | str):
        return _anthropic_sse_text_and_usage(chunk)

    choices = get(chunk, "choices")
    if choices:
        delta = get(choices[0], "delta")
        text = get(delta, "content") if delta is not None else None
        return str(text or ""), get(chunk, "usage"), bool(get(choices[0], "finish_reason"))
    kind = get(chunk, "type")
    kind = str(getattr(kind, "value", kind) or "")
    if kind.endswith("output_text.delta"):
        return str(get(chunk, "delta") or ""), None, False
    if kind.endswith("response.completed"):
        return "", get(get(chunk, "response"), "usage"), True
    return "", get(chunk, "usage"), False


#: The instance config.yaml names: ``callbacks: ["adaptive_router.integrations.litellm_plugin.proxy_hook.proxy_handler"]``.
proxy_handler = AdaptiveRouterProxyHook()
proxy_handler.start_warmup()
