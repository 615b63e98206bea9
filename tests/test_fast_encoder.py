"""The int8 encoder path: really quantised, close to fp32, never mixed into fp32 caches."""

from __future__ import annotations

import numpy as np

from adaptive_router.encoders import SentenceEncoder
from adaptive_router.fast_encoder import (
    INT8_SUFFIX,
    QuantizedSentenceEncoder,
    decision_agreement,
    embedding_agreement,
    quantize_encoder,
)

PROMPTS = [
    "What is the derivative of x squared times sine of x?",
    "Translate 'good morning' into French.",
    "Write a Python function that reverses a linked list.",
    "Why is the sky blue? Explain for a ten year old.",
]


def _has_int8_linear(st) -> bool:
    return any("quantized" in type(m).__module__ and type(m).__name__ == "Linear" for m in st.modules())


def test_quantised_encoder_is_int8_and_close_to_fp32() -> None:
    fp32 = SentenceEncoder(cache_size=16)
    int8 = QuantizedSentenceEncoder(cache_size=16)
    a = fp32.encode_uncached(PROMPTS)
    b = int8.encode_uncached(PROMPTS)
    assert _has_int8_linear(int8.st)
    assert not _has_int8_linear(fp32.st)
    assert b.shape == a.shape == (len(PROMPTS), 384)
    sims = embedding_agreement(a, b)
    assert sims.min() > 0.9, sims
    assert not np.allclose(a, b)  # it is really a different computation
    assert int8.id == fp32.id + INT8_SUFFIX  # caches keyed apart


def test_quantize_in_place_clears_the_cache_and_is_idempotent() -> None:
    enc = SentenceEncoder(cache_size=16)
    before = enc.encode(PROMPTS[:2])
    old_id = enc.id
    quantize_encoder(enc)
    assert enc.id == old_id + INT8_SUFFIX
    assert len(enc._lru) == 0
    after = enc.encode(PROMPTS[:2])
    assert not np.allclose(before, after)
    assert quantize_encoder(enc).id == old_id + INT8_SUFFIX  # not quantised twice


def test_agreement_helpers() -> None:
    x = np.array([[1.0, 0.0], [0.0, 2.0]])
    np.testing.assert_allclose(embedding_agreement(x, x), [1.0, 1.0])
    assert decision_agreement(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([[0.6, 0.4], [0.7, 0.3]])) == 0.5


def test_quantize_router_encoder_finds_the_encoder_through_wrappers(monkeypatch) -> None:
    from adaptive_router import encoders
    from adaptive_router.batching import MicroBatchingRouter
    from adaptive_router.fast_encoder import quantize_router_encoder
    from adaptive_router.routers.baselines import CheapestRouter
    from adaptive_router.routers.linear_probe import LinearProbeRouter

    monkeypatch.setattr(encoders, "_SHARED", {})  # a private registry: other tests keep fp32
    monkeypatch.delenv("ADAPTIVE_ROUTER_EMBED_CACHE", raising=False)
    probe = LinearProbeRouter(["a#1", "b#1"])
    wrapped = MicroBatchingRouter(probe)
    enc = quantize_router_encoder(wrapped)
    assert enc is not None and enc.id.endswith(INT8_SUFFIX)
    assert encoders.shared_encoder("minilm") is enc  # what the probe embeds with
    assert _has_int8_linear(enc.st)
    assert quantize_router_encoder(CheapestRouter(["a#1"])) is None
    wrapped.close()
