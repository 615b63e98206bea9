"""Micro-batching: concurrent requests share one batched forward pass.

A proxy serving 32 concurrent requests would otherwise run 32 single-prompt encoder passes,
each paying the model's fixed per-call cost (Python dispatch, tokenizer, small-matrix kernels
that use the cores badly). :class:`MicroBatcher` puts every request's input on a queue; one
worker thread takes whatever is waiting (up to ``max_batch_size``), runs the batched function
once, and hands every caller its own row. Callers may be threads (``submit(...).result()``) or
coroutines (``await asubmit(...)``, which holds no thread while it waits).

Latency at low load is protected: the worker only *waits* to gather (up to ``max_wait_ms``)
when the previous batch held more than one item, i.e. when requests are actually arriving
together. A lone request is dispatched at once, so concurrency 1 pays no gathering delay.
While a batch runs, new arrivals queue up and form the next batch on their own.

:class:`MicroBatchingRouter` wraps any :class:`~adaptive_router.routers.base.Router` with a
batcher, so an engine or the proxy plugin gets batching without any router knowing about it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from adaptive_router.cost import CostModel
from adaptive_router.domain import Decision, Fleet
from adaptive_router.engine import Prompt, RoutingEngine
from adaptive_router.errors import ConfigError
from adaptive_router.policy import Policy
from adaptive_router.prompts import content_text
from adaptive_router.routers.base import Router

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")

#: Bounds of the batcher's settings (a config outside them is rejected, not clamped).
MAX_WAIT_MS_BOUNDS = (0.0, 100.0)
MAX_BATCH_BOUNDS = (1, 1024)


@dataclass
class BatcherStats:
    """Counters for tests and the benchmark: how well requests were gathered."""

    batches: int = 0
    items: int = 0
    largest_batch: int = 0
    failed_batches: int = 0

    @property
    def mean_batch(self) -> float:
        return self.items / self.batches if self.batches else 0.0


_STOP = object()


class MicroBatcher(Generic[In, Out]):
    """Runs ``fn(list_of_inputs) -> list_of_outputs`` on batches gathered from many callers.

    Parameters
    ----------
    fn: the batched function; must return one output per input, in order.
    max_batch_size: the most inputs handed to ``fn`` at once.
    max_wait_ms: how long the worker may wait for more inputs once it holds one, used only
        while requests are arriving together (see the module docstring).
    name: the worker thread's name (shows in stack dumps).
    """

    def __init__(
        self,
        fn: Callable[[list[In]], Sequence[Out]],
        max_batch_size: int = 32,
        max_wait_ms: float = 2.0,
        name: str = "adaptive-router-batcher",
    ) -> None:
        lo, hi = MAX_BATCH_BOUNDS
        if not isinstance(max_batch_size, int) or not lo <= max_batch_size <= hi:
            raise ConfigError(f"max_batch_size must be an integer within [{lo}, {hi}], got {max_batch_size!r}")
        lo_ms, hi_ms = MAX_WAIT_MS_BOUNDS
        if not lo_ms <= float(max_wait_ms) <= hi_ms:
            raise ConfigError(f"max_wait_ms must be within [{lo_ms:g}, {hi_ms:g}] milliseconds, "
                              f"got {max_wait_ms!r}")
        self.fn = fn
        self.max_batch_size = max_batch_size
        self.max_wait_ms = float(max_wait_ms)
        self.name = name
        self.stats = BatcherStats()
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._closed = False
        self._under_load = False

    # -- public API -------------------------------------------------------------------------
    def submit(self, item: In) -> Future[Out]:
        """Queue one input; the future resolves to its output (or the error ``fn`` raised)."""
        if self._closed:
            raise RuntimeError(f"{self.name} is closed")
        fut: Future[Out] = Future()
        self._ensure_worker()
        self._queue.put((item, fut))
        return fut

    def run(self, items: Sequence[In]) -> list[Out]:
        """Blocking: the outputs of ``items`` (they may share batches with other callers)."""
        futures = [self.submit(x) for x in items]
        return [f.result() for f in futures]

    async def asubmit(self, item: In) -> Out:
        """Async: await one input's output without holding a thread while waiting."""
        return await asyncio.wrap_future(self.submit(item))

    async def arun(self, items: Sequence[In]) -> list[Out]:
        return list(await asyncio.gather(*(self.asubmit(x) for x in items)))

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker after the inputs already queued are served."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(_STOP)
            thread.join(timeout)

    # -- the worker -------------------------------------------------------------------------
    def _ensure_worker(self) -> None:
        """Start the worker lazily, and again in a forked child (threads do not survive fork)."""
        pid = os.getpid()
        if self._thread is not None and self._pid == pid and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._pid == pid and self._thread.is_alive():
                return
            if self._pid is not None and self._pid != pid:
                self._queue = queue.SimpleQueue()  # the parent's queue is not ours to drain
            self._pid = pid
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()

    def _gather(self, first: Any) -> tuple[list[Any], bool]:
        """``first`` plus whatever else is waiting (or arrives within the window under load)."""
        batch = [first]
        stop = False
        deadline = time.monotonic() + self.max_wait_ms / 1000.0
        while len(batch) < self.max_batch_size:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if not self._under_load or remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if item is _STOP:
                stop = True
                break
            batch.append(item)
        return batch, stop

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch, stop = self._gather(first)
            self._under_load = len(batch) > 1
            self._run_batch(batch)
            if stop:
                return

    def _run_batch(self, batch: list[tuple[In, Future[Out]]]) -> None:
        live = [(x, f) for x, f in batch if f.set_running_or_notify_cancel()]
        if not live:
            return
        self.stats.batches += 1
        self.stats.items += len(live)
        self.stats.largest_batch = max(self.stats.largest_batch, len(live))
        try:
            outputs = list(self.fn([x for x, _ in live]))
            if len(outputs) != len(live):
                raise RuntimeError(f"{self.name}: the batched function returned {len(outputs)} "
                                   f"outputs for {len(live)} inputs")
        except BaseException as exc:  # noqa: BLE001 - every caller must get an answer
            self.stats.failed_batches += 1
            if len(live) == 1:
                live[0][1].set_exception(exc)
                return
            # One bad input must not fail the requests it happened to share a batch with:
            # run each alone so only the culprit sees the error.
            log.debug("%s: a batch of %d failed (%s); retrying one by one", self.name, len(live), exc)
            for x, f in live:
                try:
                    f.set_result(list(self.fn([x]))[0])
                except BaseException as one_exc:  # noqa: BLE001
                    f.set_exception(one_exc)
            return
        for (_, f), out in zip(live, outputs, strict=True):
            f.set_result(out)


class MicroBatchingRouter(Router):
    """Any router, with concurrent single-prompt predictions gathered into batches.

    A drop-in :class:`Router`: an engine built on it batches the encodings of concurrent
    requests without knowing. Persistence delegates to the wrapped router, so saving the
    wrapper saves the router itself.
    """

    def __init__(self, router: Router, max_batch_size: int = 32, max_wait_ms: float = 2.0) -> None:
        super().__init__(router.candidate_keys)
        self.router = router
        self.name = router.name  # type: ignore[misc]  # report as the wrapped router
        self.uses_labels = router.uses_labels  # type: ignore[misc]
        self.batcher: MicroBatcher[str, np.ndarray] = MicroBatcher(
            self._predict_rows, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms,
            name=f"adaptive-router-batcher[{router.name}]")

    def _predict_rows(self, prompts: list[str]) -> list[np.ndarray]:
        preds = self.router.predict_batch(prompts)
        return list(preds)

    def _predict(self, prompts: Sequence[str]) -> np.ndarray:
        return np.stack(self.batcher.run(list(prompts)))

    async def apredict_batch(self, prompts: Sequence[str]) -> np.ndarray:
        """Predictions for ``prompts`` from an event loop, holding no thread while batched."""
        if not prompts:
            return np.zeros((0, len(self.candidate_keys)))
        return np.stack(await self.batcher.arun(list(prompts)))

    async def apredict(self, prompt: str) -> dict[str, float]:
        row = (await self.apredict_batch([prompt]))[0]
        return dict(zip(self.candidate_keys, row.tolist(), strict=True))

    def close(self) -> None:
        self.batcher.close()

    # -- persistence: the wrapper is not a router type of its own ---------------------------
    def get_config(self) -> dict[str, Any]:
        return self.router.get_config()

    def get_tensors(self) -> dict[str, np.ndarray]:
        return self.router.get_tensors()

    def save_pretrained(self, directory: str | Path) -> Path:
        return self.router.save_pretrained(directory)

    def __repr__(self) -> str:
        return (f"MicroBatchingRouter({self.router!r}, max_batch_size={self.batcher.max_batch_size}, "
                f"max_wait_ms={self.batcher.max_wait_ms:g})")


def with_micro_batching(router: Router, max_batch_size: int = 32, max_wait_ms: float = 2.0) -> Router:
    """``router`` wrapped in a :class:`MicroBatchingRouter` (not wrapped twice)."""
    if isinstance(router, MicroBatchingRouter):
        return router
    return MicroBatchingRouter(router, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms)


def micro_batching_engine(
    engine: RoutingEngine, max_batch_size: int = 32, max_wait_ms: float = 2.0
) -> MicroBatchingEngine:
    """A :class:`MicroBatchingEngine` with ``engine``'s fleet, router, policy and cost model."""
    return MicroBatchingEngine(engine.fleet, engine.router, engine.policy, engine.cost_model,
                               max_batch_size=max_batch_size, max_wait_ms=max_wait_ms)


class MicroBatchingEngine(RoutingEngine):
    """A :class:`RoutingEngine` whose router is micro-batched and whose ``adecide`` waits for
    its batch without holding a worker thread.

    The base engine's ``adecide`` runs ``decide`` in asyncio's default thread pool, which has
    only ``cpu_count + 4`` threads: under 32 concurrent requests at most 6 could be gathered
    into one batch. Here the coroutine itself awaits the batcher, so every concurrent request
    can join the same batch; only the cheap parts (prompt checks, token counts, the policy)
    run on the event loop, and long prompts are priced in a thread so they cannot stall it.
    """

    #: Prompts longer than this (characters) are token-counted off the event loop.
    LONG_PROMPT_CHARS = 8000

    def __init__(
        self,
        fleet: Fleet,
        router: Router,
        policy: Policy | None = None,
        cost_model: CostModel | None = None,
        max_batch_size: int = 32,
        max_wait_ms: float = 2.0,
    ) -> None:
        batched = with_micro_batching(router, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms)
        super().__init__(fleet, batched, policy, cost_model)

    @property
    def batcher(self) -> MicroBatcher[str, np.ndarray]:
        return self.router.batcher  # type: ignore[attr-defined]

    async def adecide(self, prompt: Prompt, knob: Mapping[str, Any] | Policy | None = None) -> Decision:
        return await adecide_micro_batched(self, prompt, knob)


async def adecide_micro_batched(
    engine: RoutingEngine, prompt: Prompt, knob: Mapping[str, Any] | Policy | None = None
) -> Decision:
    """``engine.decide(prompt, knob)`` for an engine whose router is a :class:`MicroBatchingRouter`,
    awaiting the batch instead of blocking a thread (see :class:`MicroBatchingEngine`).

    Integrations that build their own :class:`RoutingEngine` call this from their event loop.
    """
    router = engine.router
    if not isinstance(router, MicroBatchingRouter):
        return await engine.adecide(prompt, knob)
    text = engine.router_input(prompt)
    policy = engine._policy_for(knob)
    pending = asyncio.ensure_future(router.apredict_batch([text]))
    try:
        if _prompt_chars(prompt) > MicroBatchingEngine.LONG_PROMPT_CHARS:
            costs = await asyncio.to_thread(engine.cost_model.expected_costs, prompt, engine.fleet.candidates)
        else:
            costs = engine.cost_model.expected_costs(prompt, engine.fleet.candidates)
    except BaseException:
        pending.cancel()
        raise
    preds = (await pending)[0][engine._cols]
    return policy.decide(dict(zip(engine.keys, preds.tolist(), strict=True)), costs, router=router.name)


def _prompt_chars(prompt: Prompt) -> int:
    if isinstance(prompt, str):
        return len(prompt)
    return sum(len(content_text(m.get("content"))) for m in prompt if isinstance(m, Mapping))
