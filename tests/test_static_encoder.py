"""The static encoder distilled from MiniLM: real table, cached once, cheap, topic-aware; and the
proxy runtime's fast path for routers that use it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from adaptive_router.encoders import SentenceEncoder, make_encoder, router_encoder_name
from adaptive_router.errors import ConfigError
from adaptive_router.static_encoder import (
    StaticEmbeddingEncoder,
    base_encoder_name,
    is_static_name,
)

MATH = ["Solve for x: 3x + 7 = 22.", "What is the integral of 2x from 0 to 3?"]
COOKING = ["How long should I roast a chicken at 200 degrees?"]


@pytest.fixture(scope="module")
def static() -> StaticEmbeddingEncoder:
    return StaticEmbeddingEncoder(cache_size=16)


def test_names() -> None:
    assert is_static_name("minilm-static") and is_static_name("static:/models/x")
    assert not is_static_name("minilm")
    assert base_encoder_name("minilm-static") == "minilm"
    assert base_encoder_name("static:/models/x") == "/models/x"
    with pytest.raises(ConfigError, match="static"):
        base_encoder_name("static:")
    assert isinstance(make_encoder("minilm-static"), StaticEmbeddingEncoder)
    assert type(make_encoder("minilm")) is SentenceEncoder


def test_embeddings_are_normalised_deterministic_and_topical(static: StaticEmbeddingEncoder) -> None:
    emb = static.encode_uncached(MATH + COOKING)
    assert emb.shape == (3, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(static.encode_uncached(MATH[:1])[0], emb[0], atol=1e-6)  # one = batch
    assert emb[0] @ emb[1] > emb[0] @ emb[2]  # two maths questions are nearer than maths/cooking
    assert not static.encode_uncached([""]).any()  # no pieces: a zero row, not NaN
    assert static.dim == 384


def built_minilm_static(cache_size: int = 4) -> StaticEmbeddingEncoder:
    """MiniLM's table through the build path (``minilm-static`` reads the shipped copy)."""
    from adaptive_router.encoders import default_encoder_path

    return StaticEmbeddingEncoder(f"static:{default_encoder_path()}", cache_size=cache_size)


def test_the_table_is_minilm_own_output_and_cached_on_disk() -> None:
    static = built_minilm_static(16)
    assert not static.shipped
    first = static.encode_uncached(COOKING)  # builds the table on a machine that has none yet
    path = static.table_path()
    assert path.exists() and path.suffix == ".safetensors"
    assert "static" in static.id and static.id != SentenceEncoder().id  # caches never mix
    stamp = path.stat().st_mtime_ns
    again = built_minilm_static()
    np.testing.assert_allclose(again.encode_uncached(COOKING), first, atol=1e-6)
    assert path.stat().st_mtime_ns == stamp  # loaded, not rebuilt
    # a piece's row is MiniLM's mean-pooled output for it, centred: the rows differ and average ~0
    table = static.table
    assert table.shape[0] > 30000 and np.abs(table.mean(axis=0)).max() < 0.05
    assert np.linalg.norm(table[2000] - table[3000]) > 0.1


def test_a_torn_table_file_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import adaptive_router.static_encoder as se

    monkeypatch.setenv("ADAPTIVE_ROUTER_CACHE", str(tmp_path))
    enc = built_minilm_static()
    enc.table_path().parent.mkdir(parents=True)
    enc.table_path().write_bytes(b"not a safetensors file")
    built: list[Path] = []

    def small_table(base_path: Path, **_: object) -> np.ndarray:  # 20 s for the real one
        built.append(base_path)
        return np.random.default_rng(0).normal(size=(30522, 8)).astype(np.float32)

    monkeypatch.setattr(se, "distil_piece_table", small_table)
    assert enc.encode_uncached(["hello world"]).shape == (1, 8)
    assert built == [enc.path]
    assert built_minilm_static().table.shape == (30522, 8)  # the rebuilt file is read


def test_the_default_reads_the_shipped_table_which_matches_minilm_build(
        static: StaticEmbeddingEncoder, monkeypatch: pytest.MonkeyPatch) -> None:
    """The serving install has no torch: ``minilm-static`` must never build, and its int8 table
    must stay MiniLM's own (a rebuilt table with a new recipe needs a new shipped file)."""
    import adaptive_router.static_encoder as se

    def no_build(*_: object, **__: object) -> np.ndarray:
        raise AssertionError("the shipped table was not used")

    assert static.shipped and static.table_path().is_relative_to(se.SHIPPED_DIR)
    assert static.id != built_minilm_static().id  # quantised embeddings get their own cache id
    built = built_minilm_static().encode_uncached(MATH + COOKING)  # the build path, cached
    monkeypatch.setattr(se, "distil_piece_table", no_build)
    shipped = StaticEmbeddingEncoder(cache_size=4).encode_uncached(MATH + COOKING)
    assert ((built * shipped).sum(axis=1) > 0.9999).all()


def test_bundled_routers_and_their_encoders() -> None:
    from adaptive_router.routers import load_router

    assert router_encoder_name(load_router("default")) == "minilm-static"
    assert router_encoder_name(load_router("default-minilm")) == "minilm"
    with pytest.raises(ConfigError, match="bundled router"):
        load_router("no-such-router")


def test_runtime_decides_inline_once_decisions_prove_cheap(tmp_path: Path) -> None:
    """The proxy runtime: no micro-batching thread for a static encoder, and sub-millisecond
    decisions run on the event loop (a thread hand-off would cost more than the decision)."""
    import yaml
    from adaptive_router.integrations.litellm_plugin.runtime import AdaptiveRuntime
    from adaptive_router.integrations.plugin_settings import PluginSettings

    from adaptive_router.batching import MicroBatchingRouter

    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(yaml.safe_dump({"reference": "big", "models": [
        {"name": "big", "litellm_model": "gpt-4o", "n": [1]},
        {"name": "small", "litellm_model": "gpt-4o-mini", "n": [1, 3]}]}))
    runtime = AdaptiveRuntime(PluginSettings.load({"fleet": str(fleet), "router": "default",
                                                   "traffic_log": None}, env={}))
    assert not isinstance(runtime.router, MicroBatchingRouter)
    chat = [{"role": "user", "content": "What is 12 times 13?"}]
    assert not runtime._decides_inline(chat)  # the first decision may load the router: a thread
    first = asyncio.run(runtime.adecide(chat, {}))
    assert runtime._decision_s is not None
    if runtime._decision_s < runtime.INLINE_DECISION_S:
        assert runtime._decides_inline(chat)
    assert not runtime._decides_inline([{"role": "user", "content": "x" * runtime.INLINE_MAX_CHARS}])
    assert asyncio.run(runtime.adecide(chat, {})).candidate == first.candidate
    minilm = AdaptiveRuntime(PluginSettings.load({"fleet": str(fleet), "router": "default-minilm",
                                                  "traffic_log": None}, env={}))
    assert isinstance(minilm.router, MicroBatchingRouter)  # a transformer pass is worth sharing
