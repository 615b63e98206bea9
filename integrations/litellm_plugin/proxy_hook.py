"""The LiteLLM proxy plugin: adaptive routing switched on from config.yaml.

    litellm_settings:
      callbacks: ["adaptive_router.integrations.litellm_plugin.proxy_hook.proxy_handler"]
      adaptive_router:
        fleet: examples/litellm/fleet.yaml
        router: examples/litellm/router        # a checkpoint folder, or a baseline name
        traffic_log: /var/log/adaptive-router/traffic.jsonl

A request whose ``model`` is a routing alias (``adaptive-router``, a threshold alias such as
``adaptive-0.3``, or a named alias from the settings) goes through three steps before the call:

1. **parse** (:meth:`AdaptiveRouterProxyHook.parse`): the prompt as chat messages, whichever API
   it came through (:mod:`.api_adapters`), and the knob: the caller's team's then key's defaults,
   the alias's knob, then the request's ``metadata.adaptive_router`` (the most specific wins).
   Anything malformed is an HTTP 400 naming the field, before any model work.
2. **decide** (:meth:`~AdaptiveRouterProxyHook.decide`): the router and policy choose a (model,
   n), or plan a cascade (:mod:`adaptive_router.served_cascade`).
3. **rewrite** (:meth:`~AdaptiveRouterProxyHook.rewrite`): ``data["model"]`` becomes the chosen
   fleet model's LiteLLM model group and ``data["n"]`` the number of samples; the next-best
   candidates ride along as LiteLLM ``fallbacks`` (deployment failover, :mod:`.failover`); a
   group LiteLLM is cooling down is skipped; a stream is asked for its usage (:mod:`.streams`);
   the decision is written to the request's metadata for LiteLLM's logging payload, and the
   typed :class:`~.request_state.RequestState` is kept for the hooks after the call.

After the call (:mod:`.post_call`): best of n by the fleet's selector, the price, the cascade's
escalations through the proxy's own router, the body key ``adaptive_router``, the
``x-adaptive-router-*`` headers and one traffic log line. Streams, the Responses API and
``/v1/messages`` draw one sample and are routed before the call only; a stream's realised cost
rides on its last chunk. Requests for any other model name pass through untouched.

The runtime (settings, fleet, router) is built once per process when the proxy starts, and
reloaded when its router folder changes (:mod:`.runtime_holder`). Importing this module starts
no thread. See docs/litellm.md for the settings, headers and body keys.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from adaptive_router.integrations.litellm_plugin.api_adapters import (
    CHAT_CALLS,
    SINGLE_OUTPUT_CALLS,
    metadata_bucket,
)
from adaptive_router.integrations.litellm_plugin.failover import (
    plan_request_failover,
    served_group,
)
from adaptive_router.integrations.litellm_plugin.logging_payload import (
    ROUTING_DECISION_KEY,
    add_routing_decision,
    routing_decision,
)
from adaptive_router.integrations.litellm_plugin.metrics import observe_decision
from adaptive_router.integrations.litellm_plugin.post_call import (
    account_response,
    account_stream,
    escalation,
    log_failure,
    response_headers,
)
from adaptive_router.integrations.litellm_plugin.proxy_errors import PluginMisconfigured, proxy_error
from adaptive_router.integrations.litellm_plugin.request_parsing import parse_request
from adaptive_router.integrations.litellm_plugin.request_state import (
    STATE_KEY,
    RequestState,
    RoutedRequest,
    annotate,
    state_of,
)
from adaptive_router.integrations.litellm_plugin.runtime import AdaptiveRuntime
from adaptive_router.integrations.litellm_plugin.runtime_holder import RuntimeHolder
from adaptive_router.integrations.litellm_plugin.streams import (
    ask_for_stream_usage,
    attach_to_stream_end,
    chunk_text_and_usage,
)
from adaptive_router.integrations.plugin_settings import PluginSettings
from litellm.integrations.custom_logger import CustomLogger

from adaptive_router.domain import Decision
from adaptive_router.errors import AdaptiveRouterError, CheckpointError, ConfigError
from adaptive_router.served_cascade import ServedPlan

log = logging.getLogger("adaptive_router.litellm")

class AdaptiveRouterProxyHook(CustomLogger):
    """The proxy callback. Its runtime is built once, at proxy start or on the first request."""

    def __init__(self, settings: PluginSettings | None = None,
                 model_list: list[dict[str, Any]] | None = None, llm_router: Any = None) -> None:
        super().__init__()
        self._settings = settings
        self._llm_router = llm_router  # default: the running proxy's router (cascade escalation)
        self.runtimes = RuntimeHolder(self.settings, model_list, self.llm_router)

    def settings(self) -> PluginSettings:
        if self._settings is None:
            self._settings = PluginSettings.load()
        return self._settings

    async def runtime(self) -> AdaptiveRuntime:
        return await self.runtimes.get()

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

    def _router_or_none(self) -> Any:
        """The LiteLLM router (for its cooldowns), or None outside a proxy."""
        try:
            return self.llm_router()
        except Exception:
            return None

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

    # -- before the call: parse -> decide -> rewrite -----------------------------------------------
    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict,
                                  call_type: Any) -> dict | None:
        call = str(getattr(call_type, "value", call_type))
        try:
            if not self._is_ours(data.get("model")):
                return None
            request = self.parse(data, call, user_api_key_dict)
            runtime = await self.runtime()
            generation = self.runtimes.generation
            decision, plan = await self.decide(runtime, request)
            await self.rewrite(data, runtime, request, decision, plan, generation)
            return data
        except Exception as exc:
            if not isinstance(exc, AdaptiveRouterError):
                log.exception("adaptive_router: routing failed")
            raise proxy_error(exc) from None

    def parse(self, data: dict, call: str, user_api_key_dict: Any = None) -> RoutedRequest:
        """The request's prompt, knob and stream flag, checked (see :mod:`.request_parsing`)."""
        t0 = time.perf_counter()
        try:
            settings = self.settings()
        except ConfigError as exc:
            raise PluginMisconfigured(f"the plugin is misconfigured: {exc}") from exc
        return parse_request(data, call, settings, user_api_key_dict, t0)

    async def decide(self, runtime: AdaptiveRuntime,
                     request: RoutedRequest) -> tuple[Decision, ServedPlan | None]:
        """The (model, n) decision, and the cascade's plan when one applies (non-streamed chat:
        the router's predictions propose the steps; exploration, if any, acts on step 1)."""
        knob = request.knob
        cascade = runtime.cascade_policy(knob)  # validates `accept` even where it cannot apply
        if cascade is not None and request.call in CHAT_CALLS and not request.stream:
            base = await runtime.adecide(request.messages, {**knob, "epsilon": 0.0})
            plan = runtime.plan_cascade(base, knob, cascade)
            return plan.decision, plan
        try:
            decision = await runtime.adecide(request.messages, knob, single_sample=(
                request.stream or request.call in SINGLE_OUTPUT_CALLS))
        except (ConfigError, CheckpointError) as exc:  # the router's files, not the request
            log.error("adaptive_router: the router failed: %s", exc)
            raise PluginMisconfigured(f"the plugin is misconfigured: {exc}") from exc
        return decision, None

    async def rewrite(self, data: dict, runtime: AdaptiveRuntime, request: RoutedRequest,
                      decision: Decision, plan: ServedPlan | None, generation: int) -> RequestState:
        """Point the request at the decision's model group and n, plan its failover, and keep
        the request's state in its metadata for the hooks after the call."""
        group = runtime.group_of(decision.model)
        state = RequestState(request=request, decision=decision, group=group, decided_group=group,
                             request_id=str(data.get("litellm_call_id") or uuid.uuid4().hex),
                             generation=generation, cascade=plan)
        await plan_request_failover(data, runtime, state, self.settings(), self._router_or_none())
        data["model"] = state.group
        if request.call in CHAT_CALLS:
            if state.decision.n > 1:
                data["n"] = state.decision.n
            else:
                data.pop("n", None)
            state.injected_usage = ask_for_stream_usage(data) if request.stream else False
        bucket = metadata_bucket(data, request.call)
        # LiteLLM's logging payload (and the sinks it feeds) see the decision under the same key
        # as the response body; the request's knob, already read, is kept beside it.
        report: dict[str, Any] = {"decision": state.decision.as_dict(), "knob": request.knob,
                                  "alias": request.alias}
        if request.defaults_from:
            report["defaults_from"] = request.defaults_from
        bucket["adaptive_router"] = report
        # LiteLLM's own place for a pre-routing decision is StandardLoggingPayload.metadata
        # .routing_decision. Its Router clears metadata.routing_decision on every attempt that is
        # not one of its auto-routers, so the decision waits here for async_logging_hook.
        bucket[ROUTING_DECISION_KEY] = routing_decision(request.alias, state.group, state.decision)
        if isinstance(bucket.get("requester_metadata"), dict):  # what the logging payload copies
            bucket["requester_metadata"]["adaptive_router"] = report
        bucket[STATE_KEY] = state
        observe_decision(request.alias, report["decision"], time.perf_counter() - request.t0)
        return state

    async def async_logging_hook(self, kwargs: dict, result: Any, call_type: str) -> tuple[dict, Any]:
        return add_routing_decision(kwargs, result)

    # -- after the call -----------------------------------------------------------------------------
    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: Any, response: Any) -> Any:
        state = state_of(data)
        if state is None or state.result is not None:
            return None
        try:
            runtime = await self.runtimes.of_generation(state.generation)
            result = await account_response(runtime, data, state, response, escalation(self.llm_router, data, state))
        except Exception as exc:  # the answer is already paid for: serve it, report the problem
            log.exception("adaptive_router: post-processing failed")
            state.result = {"error": f"{type(exc).__name__}: {exc}"}
            return None
        try:
            if isinstance(response, dict):  # Anthropic /v1/messages responses are plain dicts
                response["adaptive_router"] = result.body()
            else:
                response.adaptive_router = result.body()
        except Exception:  # a response type without free attributes: keep the headers at least
            log.warning("adaptive_router: cannot attach the body key to %s", type(response).__name__)
        state.headers = result.headers()
        state.result = result.body()
        annotate(data, state.result)
        return response

    async def async_post_call_response_headers_hook(self, data: dict, user_api_key_dict: Any,
                                                    response: Any, request_headers: Any = None,
                                                    litellm_call_info: Any = None) -> dict[str, str] | None:
        state = state_of(data)
        if state is None:
            return None
        return response_headers(state, response, self.runtimes.current)

    async def async_post_call_failure_hook(self, request_data: dict, original_exception: Exception,
                                           user_api_key_dict: Any, traceback_str: str | None = None) -> Any:
        state = state_of(request_data)
        if state is None or state.logged_failure:
            return None
        state.logged_failure = True
        try:
            runtime = await self.runtimes.of_generation(state.generation)
            await log_failure(runtime, request_data, state, original_exception)
        except Exception:
            log.exception("adaptive_router: could not log a failed request")
        return None

    async def async_post_call_streaming_iterator_hook(self, user_api_key_dict: Any, response: Any,
                                                      request_data: dict) -> AsyncGenerator[Any, None]:
        """Pass the stream through, holding back the chunks from the one that finishes the
        answer on, so that the realised decision and cost ride on the stream's end."""
        state = state_of(request_data)
        if state is None:
            async for item in response:
                yield item
            return
        parts: list[str] = []
        usage: Any = None
        held: list[Any] = []  # from the chunk that finishes the choice on: sent after accounting
        served = served_group(response)  # a failover may have served the stream
        async for chunk in response:
            if served is None:
                served = served_group(chunk)
            piece, chunk_usage, finished = chunk_text_and_usage(chunk)
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
            runtime = await self.runtimes.of_generation(state.generation)
            body = await account_stream(runtime, request_data, state, "".join(parts), usage, served)
            if held:
                attach_to_stream_end(held, body, usage, injected=state.injected_usage)
        except Exception:
            log.exception("adaptive_router: could not account a streamed response")
        for chunk in held:
            yield chunk


#: The instance config.yaml names: ``callbacks: ["adaptive_router.integrations.litellm_plugin.proxy_hook.proxy_handler"]``.
proxy_handler = AdaptiveRouterProxyHook()
proxy_handler.runtimes.schedule_warmup()  # a task on the proxy's event loop; nothing without one
