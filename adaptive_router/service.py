"""The routing service: the one core object that runs a routed request (issue 14).

Knob -> policy, decide, keep the best of n, account the cost, plan and run a cascade, and build
the traffic log line: the LiteLLM proxy plugin, the SDK routing strategy and ``ChatAdaptiveRouter``
all call :class:`RoutingService`; none of them re-implements a step. They keep only translation:
reading a LiteLLM response or LangChain messages into texts and token counts, and making the
framework's own calls (a step is drawn by whoever knows how to call the model).

Every setting is an explicit keyword argument (the integrations read them from their own
configuration: the plugin's ``PluginSettings``, the chat model's fields). Nothing here imports an
integration (DESIGN.md's arrows: integrations -> core). The service keeps no per-request state,
so any number of proxy replicas can each build one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_router.best_of_n import Selection, select_best
from adaptive_router.cascade import DEFAULT_MAX_STEPS, CascadePolicy, DrawnStep
from adaptive_router.cost import CostModel
from adaptive_router.domain import Candidate, CostBreakdown, Decision, Fleet
from adaptive_router.engine import RoutingEngine
from adaptive_router.errors import ConfigError, InvalidRequestError
from adaptive_router.policy import (
    DEFAULT_KNOB,
    POLICY_KNOBS,
    CostAwareExploration,
    EpsilonExploration,
    Policy,
    policy_from_knob,
)
from adaptive_router.reward import RewardModel
from adaptive_router.served_cascade import (
    ServedCascade,
    ServedPlan,
    arun_served_cascade,
    plan_served_cascade,
)
from adaptive_router.traffic import TrafficLogLine, TrafficLogWriter
from adaptive_router.verifiers.base import Verifier

log = logging.getLogger("adaptive_router.service")



@dataclass(frozen=True)
class CascadeConfig:
    """A fleet's cascade: its verifier (a name/folder for :func:`load_verifier`, or a Verifier)
    and the defaults of :class:`~adaptive_router.cascade.CascadePolicy`."""

    verifier: str | Verifier = "agreement"
    accept: float = 0.5
    max_steps: int = DEFAULT_MAX_STEPS
    skip_below: float | None = None
    steps: tuple[str, ...] | None = None


def n1_fleet(fleet: Fleet) -> Fleet | None:
    """The fleet restricted to single-sample candidates (streaming and the Responses API)."""
    models = [m.model_copy(update={"n": [1]}) for m in fleet.models if 1 in m.n]
    if not models:
        return None
    ref = fleet.reference if fleet.reference in {m.name for m in models} else None
    return fleet.model_copy(update={"models": models, "reference": ref})


def load_serving_router(spec: Any, fleet: Fleet, quantize_encoder: bool = False,
                        micro_batching: bool = False, micro_batch_size: int = 32,
                        micro_batch_ms: float = 2.0) -> Any:
    """A router for serving: loaded from a checkpoint folder or baseline name (or given), with
    its encoder quantised on request, and micro-batched when concurrent requests gain from
    sharing a forward pass (issue 10)."""
    from adaptive_router.routers import load_router

    router = load_router(spec, fleet=fleet) if isinstance(spec, str) else spec
    own_knob = getattr(router, "default_knob", None)
    if quantize_encoder:  # opt-in: int8 linear layers in the router's encoder
        from adaptive_router.fast_encoder import quantize_router_encoder

        quantize_router_encoder(router)
    if micro_batching and _gains_from_batching(router):
        from adaptive_router.batching import with_micro_batching

        router = with_micro_batching(router, max_batch_size=micro_batch_size, max_wait_ms=micro_batch_ms)
        router.default_knob = own_knob  # the wrapper serves with the checkpoint's validated knob
    return router


def _gains_from_batching(router: Any) -> bool:
    """Micro-batching shares a transformer forward pass between concurrent requests; a static
    encoder (a table look-up per prompt) or a router that reads no prompt has nothing to share,
    and the hand-off to the batching thread would cost more than it saves."""
    from adaptive_router.encoders import router_encoder_name
    from adaptive_router.static_encoder import is_static_name

    name = router_encoder_name(router)
    if name is not None and is_static_name(name):
        log.info("adaptive_router: the router's encoder %s is static; micro-batching is not used", name)
        return False
    return True


class RoutingService:
    """Fleet + router + policy + selector + cost + cascade + traffic log.

    Parameters
    ----------
    fleet, router: the candidates and a loaded router (see :func:`load_serving_router`).
    default_knob: the knob when a request gives none; None = the router checkpoint's own
        ``default_knob`` (chosen on validation by ``adaptive-router train``), else
        ``{"threshold": 0.5}``.
    explore_epsilon, explore_seed, explore_strategy: exploration (``uniform`` or ``cost-aware``),
        each decision's propensity logged; the seed makes the draws reproducible.
    selector: ``reward`` | ``majority`` | ``first`` (default: the fleet's).
    reward_model: a RewardModel, or a folder/name loaded on first use (default: the fleet's).
    count_tokens: count prompt tokens for the expected costs (False: ``len / 4``).
    traffic_log: a :class:`TrafficLogWriter`; ``traffic_log_error`` says why there is none
        when one was asked for (reported on every request it could not log).
    log_messages: keep the messages in the log lines (the writer's RedactionPolicy masks them).
    cascade: a :class:`CascadeConfig` to run cascades; None = pre-call routing only.
    resolve_path: turns a configured path into an existing one (e.g. against config.yaml's folder).
    """

    def __init__(self, fleet: Fleet, router: Any, *, default_knob: Mapping[str, float] | None = None,
                 explore_epsilon: float = 0.0, explore_seed: int | None = None,
                 explore_strategy: str = "uniform", selector: str | None = None,
                 reward_model: RewardModel | str | None = None, count_tokens: bool = True,
                 traffic_log: TrafficLogWriter | None = None, traffic_log_error: str | None = None,
                 log_messages: bool = True, cascade: CascadeConfig | None = None,
                 resolve_path: Callable[[str], Path | None] | None = None) -> None:
        self.fleet = fleet
        self.router = router
        self.default_knob = dict(default_knob or getattr(router, "default_knob", None) or DEFAULT_KNOB)
        self.explore_epsilon = float(explore_epsilon or 0.0)
        self.explore_strategy = explore_strategy
        self._seed_lock = threading.Lock()
        self._seeds = np.random.default_rng(explore_seed) if explore_seed is not None else None
        self._resolve = resolve_path or (lambda p: Path(p).expanduser())
        self._decision_s: float | None = None  # moving average of one decision's compute time
        self._write_times: deque[float] = deque(maxlen=32)  # recent traffic-log append times
        self.cost_model = CostModel(self.fleet, count_tokens=count_tokens)
        self.engine = RoutingEngine(self.fleet, self.router, self._default_policy(), self.cost_model)
        small = n1_fleet(self.fleet)
        self.engine_n1 = (RoutingEngine(small, self.router, self._default_policy(),
                                        CostModel(small, count_tokens=count_tokens))
                          if small is not None else None)
        self.selector = selector or self.fleet.selector
        given = reward_model if isinstance(reward_model, RewardModel) else None
        self.reward_model_spec = (None if given is not None else reward_model) or self.fleet.reward_model
        self._reward_model: RewardModel | None = given
        self._reward_lock = threading.Lock()
        self.writer = traffic_log
        self.writer_error = traffic_log_error
        self.log_messages = log_messages
        self.cascade_config = cascade
        if cascade is not None:
            self._check_cascade(cascade)
        self._verifier: Verifier | None = (cascade.verifier if cascade is not None
                                           and isinstance(cascade.verifier, Verifier) else None)
        self._verifier_lock = threading.Lock()
        if self.selector == "reward" and self._reward_model is None and not self.reward_model_spec:
            log.warning("adaptive_router: selector is 'reward' but no reward_model is set; "
                        "best-of-n keeps the first sample. Set reward_model or selector: majority")

    #: What :meth:`check` routes once at startup: any prompt works, it only has to reach the
    #: router's encoder and every candidate's prediction.
    PROBE_PROMPT = "What is 2 + 2? Answer briefly."

    def check(self) -> None:
        """Route one probe prompt through every engine now, so that whatever loads lazily (the
        encoder a checkpoint names, its tokenizer, the fleet's candidate keys against the
        router's) fails at startup with the reason, not on every request later as a client
        error. Raises :class:`ConfigError` saying what is wrong."""
        engines = [self.engine] + ([self.engine_n1] if self.engine_n1 is not None else [])
        for engine in engines:
            try:
                # no exploration: a seeded exploration stream must not lose a draw to the probe
                engine.decide(self.PROBE_PROMPT, self.policy_for({"epsilon": 0.0}))
            except ConfigError:
                raise
            except Exception as exc:
                raise ConfigError(f"the router {getattr(self.router, 'name', type(self.router).__name__)!r} "
                                  f"cannot route a probe prompt: {type(exc).__name__}: {exc}") from exc
        spec = self.reward_model_spec
        if self.selector == "reward" and isinstance(spec, str) and ("/" in spec or spec.startswith((".", "~"))):
            path = self._resolve(spec)
            if path is None or not path.exists():
                # not fatal: best-of-n keeps the first sample (and says so) until it is fixed
                log.error("adaptive_router: the reward model %r does not exist; best-of-n keeps the "
                          "first sample until it is fixed", spec)

    def _check_cascade(self, cascade: CascadeConfig) -> None:
        """Fixed steps must be fleet candidates (a configuration error, raised at startup); a
        verifier folder that does not exist is logged now, and requests then serve step 1 with a
        note rather than fail (routing keeps working while the verifier is fixed)."""
        if cascade.steps:
            unknown = [k for k in cascade.steps if k not in self.fleet.candidate_keys]
            if unknown:
                raise ConfigError(f"cascade steps {unknown} are not fleet candidates; use keys of "
                                  f"{self.fleet.candidate_keys}")
        spec = cascade.verifier
        if isinstance(spec, str) and spec != "agreement" and not spec.startswith("judge:"):
            path = self._resolve(spec)
            if path is None or not path.is_dir():
                log.error("adaptive_router: the cascade's verifier %r is not 'agreement', "
                          "'judge:<model>' or an existing folder; cascaded requests will serve "
                          "their first step until it is fixed", spec)

    # -- policy ---------------------------------------------------------------------------------
    def _default_policy(self) -> Policy:
        return self.policy_for({})

    def policy_for(self, knob: Mapping[str, float]) -> Policy:
        """The request's knob, else the configured default; wrapped in exploration if asked."""
        knob = dict(knob)
        knob.pop("accept", None)  # the cascade's acceptance level, not a routing policy's
        eps = knob.pop("epsilon", None)
        base = policy_from_knob(knob if any(k in knob for k in POLICY_KNOBS) else self.default_knob)
        eps = self.explore_epsilon if eps is None else eps
        if eps and eps > 0:
            if self.explore_strategy == "cost-aware":
                return CostAwareExploration(base, eps, seed=self._next_seed())
            return EpsilonExploration(base, eps, seed=self._next_seed())
        return base

    def _next_seed(self) -> int | None:
        """A fresh seed per request from one seeded stream: reproducible, never the same draw."""
        if self._seeds is None:
            return None
        with self._seed_lock:
            return int(self._seeds.integers(0, 2**63 - 1))

    def group_of(self, model: str) -> str:
        return self.fleet.model(model).call_name

    def model_of_group(self, group: str) -> str | None:
        for m in self.fleet.models:
            if m.call_name == group:
                return m.name
        return None

    # -- deciding -------------------------------------------------------------------------------
    def _engine(self, single_sample: bool) -> RoutingEngine:
        if not single_sample:
            return self.engine
        if self.engine_n1 is None:
            raise InvalidRequestError(
                "this request can draw one sample only (streaming, the Responses API or "
                "/v1/messages), but no fleet model offers n = 1; add 1 to a model's n list "
                "in the fleet file")
        return self.engine_n1

    async def adecide(self, messages: Sequence[Mapping[str, Any]] | str, knob: Mapping[str, float] | Policy,
                      single_sample: bool = False) -> Decision:
        """The decision for a chat: on the event loop when decisions have been sub-millisecond,
        else off it (routers and tokenizers are CPU-bound). ``knob`` may be a built Policy."""
        engine = self._engine(single_sample)
        from adaptive_router.batching import MicroBatchingRouter, adecide_micro_batched

        policy = knob if isinstance(knob, Policy) else self.policy_for(knob)
        prompt = messages if isinstance(messages, str) else list(messages)
        if isinstance(engine.router, MicroBatchingRouter):  # awaits its batch, holds no thread
            return await adecide_micro_batched(engine, prompt, policy)
        if self._decides_inline(prompt):
            return self._timed_decide(engine, prompt, policy)
        return await asyncio.to_thread(self._timed_decide, engine, prompt, policy)

    #: A decision that has been taking less than this runs on the event loop: handing it to a
    #: worker thread and back costs more CPU than the decision itself (the static encoder's
    #: ~0.5 ms; ``make bench``). Slower routers, and the first decisions (which may load the
    #: router), run in a thread so the loop keeps serving.
    INLINE_DECISION_S = 0.002
    #: Longer prompts always go to a thread: counting their tokens alone can take milliseconds.
    INLINE_MAX_CHARS = 4000

    def _decides_inline(self, messages: Sequence[Mapping[str, Any]] | str) -> bool:
        recent = self._decision_s
        if recent is None or recent >= self.INLINE_DECISION_S:
            return False
        if isinstance(messages, str):
            return len(messages) < self.INLINE_MAX_CHARS
        chars = 0
        for m in messages:
            content = m.get("content") if isinstance(m, Mapping) else None
            chars += len(content) if isinstance(content, str) else self.INLINE_MAX_CHARS
        return chars < self.INLINE_MAX_CHARS

    def _timed_decide(self, engine: RoutingEngine, messages: Any, policy: Policy) -> Decision:
        # CPU time of this thread, not wall time: under load a wall clock also counts the
        # waits for other threads, and would push cheap decisions off the loop exactly when
        # the hand-off costs most
        t0 = time.thread_time()
        decision = engine.decide(messages, policy)
        took = time.thread_time() - t0
        recent = self._decision_s
        self._decision_s = took if recent is None else 0.8 * recent + 0.2 * took
        return decision

    def decide(self, messages: Sequence[Mapping[str, Any]] | str, knob: Mapping[str, float] | Policy,
               single_sample: bool = False) -> Decision:
        engine = self.engine_n1 if single_sample and self.engine_n1 is not None else self.engine
        policy = knob if isinstance(knob, Policy) else self.policy_for(knob)
        return engine.decide(messages if isinstance(messages, str) else list(messages), policy)

    # -- best of n ------------------------------------------------------------------------------
    def reward_model(self) -> RewardModel | None:
        """The reward model, loaded on first use; None if the selector needs none."""
        if self.selector != "reward":
            return None
        if self._reward_model is None and self.reward_model_spec:
            with self._reward_lock:
                if self._reward_model is None:
                    from adaptive_router.reward_models import load_reward_model

                    spec = self._resolve(self.reward_model_spec)
                    self._reward_model = load_reward_model(
                        str(spec) if spec is not None and spec.exists() else self.reward_model_spec)
        return self._reward_model

    def select(self, prompt: str, texts: Sequence[str]) -> Selection:
        """Keep the best of ``texts``; a failing reward model falls back to the first sample."""
        try:
            rm = self.reward_model()
        except Exception as exc:  # a broken reward model must not fail requests
            log.warning("adaptive_router: reward model unavailable (%s); keeping the first sample", exc)
            return Selection(index=0, selector=self.selector, selection_fallback=f"reward model unavailable: {exc}")
        return select_best(prompt, list(texts), selector=self.selector, reward_model=rm)

    async def aselect(self, prompt: str, texts: Sequence[str]) -> Selection:
        if len(texts) <= 1:
            return Selection(index=0, selector=self.selector)
        return await asyncio.to_thread(self.select, prompt, list(texts))

    # -- cost -----------------------------------------------------------------------------------
    def realised_cost(self, model: str, prompt_tokens: int, output_tokens: Sequence[int],
                      selection: Selection | None = None) -> CostBreakdown:
        """Dollars of one step: the prompt once per call, every sample's output, and the reward
        model's scoring when it chose (a priced reward model)."""
        reward_cost = 0.0
        if selection is not None and selection.selector == "reward" and selection.scores:
            rm = self._reward_model
            if rm is not None:
                reward_cost = float(getattr(rm, "cost_per_pair_usd", 0.0) or 0.0) * len(selection.scores)
        return self.cost_model.realised(model, prompt_tokens, output_tokens, reward_cost)

    # -- cascades -------------------------------------------------------------------------------
    def cascade_policy(self, knob: Mapping[str, float]) -> CascadePolicy | None:
        """The request's cascade (None when the service runs none).

        ``accept`` comes from the knob, else the configuration; the knob's ``budget_usd`` caps
        the summed expected cost of the steps. ``accept`` without a cascade is a 400.
        """
        cs = self.cascade_config
        if cs is None:
            if knob.get("accept") is not None:
                raise InvalidRequestError(
                    "accept is a cascade's acceptance level, but no cascade is configured; add "
                    "cascade: {verifier: agreement} to the adaptive_router settings (or cascade= "
                    "to the chat model), or leave accept out")
            return None
        return CascadePolicy(accept=float(knob.get("accept", cs.accept)), max_steps=cs.max_steps,
                             budget_usd=knob.get("budget_usd"), skip_below=cs.skip_below,
                             steps=list(cs.steps) if cs.steps else None)

    def plan_cascade(self, decision: Decision, knob: Mapping[str, float],
                     policy: CascadePolicy) -> ServedPlan:
        """The request's steps from a non-exploring decision, exploring on step 1 when the
        knob or the configuration gives an epsilon, with the ``explore_strategy`` (uniform or
        cost-aware); see :mod:`adaptive_router.served_cascade`."""
        eps = knob.get("epsilon")
        eps = self.explore_epsilon if eps is None else float(eps)
        explore = None
        if eps and self.explore_strategy == "cost-aware":
            keys = list(decision.expected_costs_usd)
            dist = CostAwareExploration(policy_from_knob(self.default_knob), eps).exploration_distribution(
                np.array([[decision.expected_costs_usd[k] for k in keys]]))[0]
            explore = dict(zip(keys, dist.tolist(), strict=True))
        return plan_served_cascade(policy, decision, epsilon=eps or 0.0,
                                   seed=self._next_seed() if eps else None, explore=explore)

    async def arun_cascade(self, prompt: str, plan: ServedPlan, first: DrawnStep,
                           draw: Callable[[Candidate, int], Awaitable[DrawnStep]]) -> ServedCascade:
        """Run ``plan`` from its drawn first step; ``draw`` draws and accounts a later step.
        Never raises (see :func:`adaptive_router.served_cascade.arun_served_cascade`)."""
        return await arun_served_cascade(prompt, plan, first, draw, self.averifier, plan.policy.accept)

    def verifier(self) -> Verifier:
        """The cascade's verifier, loaded once on first use (a reward model can take seconds)."""
        if self._verifier is None:
            with self._verifier_lock:
                if self._verifier is None:
                    self._verifier = self._load_verifier()
        return self._verifier

    async def averifier(self) -> Verifier:
        if self._verifier is not None:
            return self._verifier
        return await asyncio.to_thread(self.verifier)

    def _load_verifier(self) -> Verifier:
        from adaptive_router.verifiers import load_verifier

        cs = self.cascade_config
        if cs is None:
            raise ConfigError("no cascade is configured")
        if isinstance(cs.verifier, Verifier):
            return cs.verifier
        spec = cs.verifier.strip()
        if spec.startswith("judge:"):
            return self.judge_verifier(spec.split(":", 1)[1])
        if spec != "agreement":
            path = self._resolve(spec)
            spec = str(path) if path is not None and path.exists() else spec
        return load_verifier(spec)

    def judge_verifier(self, model: str) -> Verifier:
        """``judge:<model>``: the core's LLM judge (any model LiteLLM reaches). The proxy plugin
        overrides this to ask the proxy's own model groups."""
        from adaptive_router.verifiers.judge import JudgeVerifier

        return JudgeVerifier(model)

    # -- the traffic log ------------------------------------------------------------------------
    def log_line(self, request_id: str, decision: Decision, prompt: str,
                     messages: Sequence[Mapping[str, Any]] | None, samples: Sequence[str],
                     scores: Sequence[float], chosen_index: int, prompt_tokens: int,
                     output_tokens: Sequence[int], cost_usd: float, latency_s: float,
                     group: str | None, error: str | None = None,
                     cascade: Mapping[str, Any] | None = None, **extra: Any) -> TrafficLogLine:
        """The traffic log line of one routed request (served, or failed with ``error``).

        With a cascade, the line's fields are step 1's (the router's action, whose propensity
        the decision holds), ``cost_usd`` the sum over steps, and ``cascade`` every step.
        """
        extra = {k: v for k, v in extra.items() if v is not None}
        if cascade is not None:
            extra["cascade"] = dict(cascade)
        return TrafficLogLine(
            request_id=request_id,
            prompt=prompt,
            # masked as the writer's RedactionPolicy says when the line is written
            messages=([dict(m) for m in messages] if self.log_messages and messages is not None
                      else None),
            decision=decision.as_dict(),
            samples=list(samples),
            reward_scores=[float(s) for s in scores],
            chosen_index=int(chosen_index),
            prompt_tokens=int(prompt_tokens),
            output_tokens=[int(t) for t in output_tokens],
            cost_usd=float(cost_usd),
            latency_s=max(0.0, latency_s),
            model_group=group,
            explored=decision.explored,
            propensity=decision.propensity,
            error=error,
            **extra,
        )

    def write_log(self, line: TrafficLogLine) -> None:
        if self.writer is None:
            if self.writer_error:  # reported for every request it could not log
                log.error("adaptive_router: could not write the traffic log %s", self.writer_error)
            return
        try:
            self.writer.write(line)
        except Exception as exc:  # the log must never fail a request
            log.error("adaptive_router: could not write the traffic log %s: %s", self.writer.path, exc)

    #: A traffic-log append that has been taking less than this runs on the event loop (the
    #: thread hand-off costs more than the append); a slow disk moves appends to a thread.
    INLINE_WRITE_S = 0.001

    async def awrite_log(self, line: TrafficLogLine) -> None:
        """Append ``line`` before the response leaves, so the log never lags what clients saw."""
        if self.writer is None:
            if self.writer_error:
                self.write_log(line)
            return
        if self._write_times and min(self._write_times) < self.INLINE_WRITE_S:
            self._timed_write(line)
        else:
            await asyncio.to_thread(self._timed_write, line)

    def _timed_write(self, line: TrafficLogLine) -> None:
        t0 = time.perf_counter()
        self.write_log(line)
        # wall time (a slow disk blocks without using CPU), but the least of the recent ones:
        # waits for other threads only ever add to it, a slow disk slows every append
        self._write_times.append(time.perf_counter() - t0)


__all__ = ["CascadeConfig", "RoutingService", "load_serving_router", "n1_fleet"]
