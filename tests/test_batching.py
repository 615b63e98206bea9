"""Micro-batching: concurrent predictions share batches and still get their own rows."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Sequence

import numpy as np
import pytest

from adaptive_router.batching import MicroBatcher, MicroBatchingEngine, MicroBatchingRouter
from adaptive_router.cost import CostModel
from adaptive_router.domain import Fleet
from adaptive_router.engine import RoutingEngine
from adaptive_router.errors import ConfigError
from adaptive_router.policy import ThresholdPolicy
from adaptive_router.routers.base import Router

FLEET = Fleet.from_dict({"models": [
    {"name": "small", "n": [1, 3], "price": {"input_per_million": 0.1, "output_per_million": 0.2}},
    {"name": "large", "n": [1], "price": {"input_per_million": 5, "output_per_million": 15}},
]})


class HashRouter(Router):
    """A real router whose prediction is a fixed function of the prompt; records batch sizes.

    ``delay`` makes each forward pass take a while (as an encoder does), so that concurrent
    callers really overlap; prompts containing ``"boom"`` make the pass fail.
    """

    name = "hash"

    def __init__(self, candidate_keys: Sequence[str], delay: float = 0.02) -> None:
        super().__init__(candidate_keys)
        self.delay = delay
        self.batch_sizes: list[int] = []
        self.threads: set[str] = set()

    def _predict(self, prompts: Sequence[str]) -> np.ndarray:
        self.batch_sizes.append(len(prompts))
        self.threads.add(threading.current_thread().name)
        if any("boom" in p for p in prompts):
            raise RuntimeError("boom")
        threading.Event().wait(self.delay)
        return np.stack([row_for(p, len(self.candidate_keys)) for p in prompts])


def row_for(prompt: str, k: int) -> np.ndarray:
    digest = hashlib.sha256(prompt.encode()).digest()
    return np.array([digest[i] / 255.0 for i in range(k)])


def test_concurrent_threads_share_batches_and_get_their_own_rows() -> None:
    inner = HashRouter(FLEET.candidate_keys)
    router = MicroBatchingRouter(inner, max_batch_size=16, max_wait_ms=5)
    prompts = [f"prompt number {i}" for i in range(24)]
    results: dict[str, np.ndarray] = {}
    barrier = threading.Barrier(len(prompts))

    def call(p: str) -> None:
        barrier.wait()
        results[p] = router.predict_batch([p])[0]

    threads = [threading.Thread(target=call, args=(p,)) for p in prompts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for p in prompts:
        np.testing.assert_allclose(results[p], row_for(p, len(FLEET.candidate_keys)))
    assert sum(inner.batch_sizes) == len(prompts)
    assert max(inner.batch_sizes) > 1, inner.batch_sizes  # they were gathered
    assert max(inner.batch_sizes) <= 16
    assert len(inner.batch_sizes) < len(prompts)
    assert inner.threads == {router.batcher.name}  # one worker runs every forward pass
    assert router.batcher.stats.items == len(prompts)
    router.close()


def test_async_engine_batches_concurrent_requests_and_matches_plain_decisions() -> None:
    inner = HashRouter(FLEET.candidate_keys)
    cost = CostModel(FLEET, count_tokens=False)
    plain = RoutingEngine(FLEET, HashRouter(FLEET.candidate_keys, delay=0), ThresholdPolicy(0.5), cost)
    engine = MicroBatchingEngine(FLEET, inner, ThresholdPolicy(0.5), cost, max_batch_size=32, max_wait_ms=5)
    prompts = [f"question {i}: what is {i} squared?" for i in range(32)]

    async def run() -> list:
        return await asyncio.gather(*(engine.adecide([{"role": "user", "content": p}]) for p in prompts))

    decisions = asyncio.run(run())
    for p, d in zip(prompts, decisions, strict=True):
        ref = plain.decide(p)
        assert d.candidate == ref.candidate
        assert d.predictions == pytest.approx(ref.predictions)
        assert d.router == "hash"
    # 32 coroutines (more than the default thread pool's workers) joined few batches
    assert max(inner.batch_sizes) > 6, inner.batch_sizes
    engine.router.close()


def test_a_failing_input_fails_only_its_own_request() -> None:
    inner = HashRouter(["a#1", "b#1"], delay=0.01)
    batcher: MicroBatcher[str, np.ndarray] = MicroBatcher(
        lambda xs: list(inner.predict_batch(xs)), max_batch_size=8, max_wait_ms=20)
    ok_first = batcher.submit("warm up")  # makes the batcher gather what follows together
    ok_first.result(10)
    futures = {p: batcher.submit(p) for p in ["fine 1", "boom here", "fine 2", "fine 3"]}
    with pytest.raises(RuntimeError, match="boom"):
        futures["boom here"].result(10)
    for p in ["fine 1", "fine 2", "fine 3"]:
        np.testing.assert_allclose(futures[p].result(10), row_for(p, 2))
    batcher.close()


def test_lone_request_is_dispatched_without_waiting_for_company() -> None:
    inner = HashRouter(["a#1", "b#1"], delay=0)
    router = MicroBatchingRouter(inner, max_wait_ms=100)
    for i in range(3):
        router.predict(f"alone {i}")
    # one item per batch, and the batcher never switched to gathering mode
    assert inner.batch_sizes == [1, 1, 1]
    assert router.batcher._under_load is False
    router.close()


def test_settings_out_of_bounds_are_rejected() -> None:
    with pytest.raises(ConfigError, match="max_wait_ms"):
        MicroBatcher(lambda xs: xs, max_wait_ms=-1)
    with pytest.raises(ConfigError, match="max_wait_ms"):
        MicroBatcher(lambda xs: xs, max_wait_ms=1e6)
    with pytest.raises(ConfigError, match="max_batch_size"):
        MicroBatcher(lambda xs: xs, max_batch_size=0)


def test_wrapper_saves_as_the_wrapped_router(tmp_path) -> None:
    from adaptive_router.routers.baselines import StrongestRouter

    inner = StrongestRouter.for_fleet(FLEET)
    wrapped = MicroBatchingRouter(inner)
    assert wrapped.name == "strongest"
    wrapped.save_pretrained(tmp_path / "ckpt")
    loaded = Router.from_pretrained(tmp_path / "ckpt")
    assert isinstance(loaded, StrongestRouter)
    np.testing.assert_allclose(loaded.predict_batch(["x"]), wrapped.predict_batch(["x"]))
    wrapped.close()


def test_closed_batcher_refuses_new_work() -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher(lambda xs: [x * 2 for x in xs])
    assert batcher.run([1, 2, 3]) == [2, 4, 6]
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(1)
