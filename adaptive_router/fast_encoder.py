"""A faster encoder path: dynamic int8 quantisation of the sentence encoder's linear layers.

Routing's latency floor is the encoder's forward pass (MiniLM: six BERT layers whose time is
almost all in ``nn.Linear``). PyTorch's dynamic quantisation stores those weights as int8 and
quantises activations on the fly, with no calibration data and no new dependency; on x86 CPUs
it runs the matrix products with int8 kernels (fbgemm/onednn). Embeddings move very little
(cosine similarity to the fp32 embedding > 0.99), so a router trained on fp32 embeddings keeps
its decisions on all but borderline prompts; :func:`embedding_agreement` measures that.

Whether it pays depends on the CPU and the batch: ``make bench`` measures fp32 and int8 side by
side, and the speed-up it reports is the reason to turn it on (``quantize: true`` in the plugin
settings, or :func:`use_quantized_encoder`), never a default.

The quantised encoder gets its own cache id (``...:int8``), so fp32 and int8 embeddings never
mix in the memory or disk caches.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_router.encoders import DEFAULT_ENCODER, SentenceEncoder, shared_encoder

log = logging.getLogger(__name__)

INT8_SUFFIX = ":int8"
_QUANTIZE_LOCK = threading.Lock()


def quantize_linear_layers(module: Any) -> Any:
    """``module`` with every ``nn.Linear`` replaced by a dynamically quantised int8 one (in place)."""
    import torch

    with warnings.catch_warnings():
        # torch.ao.quantization announces its future move to torchao; the API works as is.
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8,
                                                      inplace=True)


def _quantize_sentence_transformer(st: Any) -> Any:
    """Quantise the transformer inside a SentenceTransformer (pooling layers have no weights)."""
    for sub in st:
        inner = getattr(sub, "auto_model", None)
        if inner is not None:
            quantize_linear_layers(inner)
    return st


class QuantizedSentenceEncoder(SentenceEncoder):
    """A :class:`SentenceEncoder` whose model runs with int8 linear layers."""

    def __init__(self, model: str = DEFAULT_ENCODER, device: str | None = None, cache_size: int = 4096,
                 disk_cache: str | Path | None = None, batch_size: int = 64) -> None:
        super().__init__(model, device=device, cache_size=cache_size, disk_cache=disk_cache,
                         batch_size=batch_size)
        self.id = self.id + INT8_SUFFIX

    @property
    def st(self) -> Any:
        if self._st is None:
            with self._lock:
                if self._st is None:
                    from sentence_transformers import SentenceTransformer

                    model = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
                    self._st = _quantize_sentence_transformer(model)
        return self._st


def quantize_encoder(encoder: SentenceEncoder) -> SentenceEncoder:
    """Switch an existing encoder (e.g. the one routers share) to int8, in place.

    Its memory cache is cleared and its cache id changed, so no fp32 embedding is served as an
    int8 one. Idempotent. Quantisation is CPU-only: an encoder on a GPU is left as it is.
    """
    from adaptive_router.static_encoder import StaticEmbeddingEncoder

    with _QUANTIZE_LOCK:
        if encoder.id.endswith(INT8_SUFFIX):
            return encoder
        if isinstance(encoder, StaticEmbeddingEncoder):
            log.info("the static encoder runs no transformer; nothing to quantise")
            return encoder
        if encoder.device not in (None, "cpu"):
            log.warning("int8 quantisation is CPU-only; encoder on %s left as is", encoder.device)
            return encoder
        st = encoder.st
        if str(getattr(st, "device", "cpu")) != "cpu":
            log.warning("int8 quantisation is CPU-only; encoder on %s left as is", st.device)
            return encoder
        _quantize_sentence_transformer(st)
        with encoder._lock:
            encoder.id = encoder.id + INT8_SUFFIX
            encoder._lru.clear()
    return encoder


def use_quantized_encoder(model: str = DEFAULT_ENCODER, disk_cache: str | Path | None = None) -> SentenceEncoder:
    """Quantise the process-wide shared encoder that embedding routers use (see
    :func:`adaptive_router.encoders.shared_encoder`), so every router in this process runs int8."""
    return quantize_encoder(shared_encoder(model, disk_cache=disk_cache))


def embedding_agreement(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of ``candidate`` to the same row of ``reference``."""
    a = np.asarray(reference, np.float64)
    b = np.asarray(candidate, np.float64)
    num = (a * b).sum(axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return num / np.maximum(den, 1e-12)


def decision_agreement(fp32_preds: np.ndarray, int8_preds: np.ndarray) -> float:
    """Share of prompts for which the two prediction matrices rank the same candidate first."""
    a = np.asarray(fp32_preds)
    b = np.asarray(int8_preds)
    if len(a) == 0:
        return 1.0
    return float(np.mean(a.argmax(axis=1) == b.argmax(axis=1)))


def sample_texts(words: int, count: int = 1, seed: int = 0) -> Sequence[str]:
    """Deterministic English-like prompts of ``words`` words (benchmarks and tests)."""
    rng = np.random.default_rng(seed)
    vocab = ("the of and to in is that for it as with was on be by this are or from at which "
             "model price prime number integral proof cost route sample answer question graph "
             "derive explain compute why how what translate summarise python function error "
             "triangle probability energy market history language theorem vector matrix").split()
    return [" ".join(rng.choice(vocab, size=words)) for _ in range(count)]


def quantize_router_encoder(router: Any) -> SentenceEncoder | None:
    """Switch the shared encoder that ``router`` embeds prompts with to int8.

    Finds the encoder through the router's ``encoder`` setting (embedding routers), looking
    through wrappers (``router`` / ``inner`` attributes). Returns the quantised encoder, or
    None when the router reads no sentence embedding (baselines, fine-tuned classifiers).
    """
    import os

    from adaptive_router.encoders import embedding_router_of

    owner = embedding_router_of(router)
    if owner is None:
        return None
    cache = getattr(owner, "embedding_cache", None) or os.environ.get("ADAPTIVE_ROUTER_EMBED_CACHE")
    return use_quantized_encoder(owner.encoder, disk_cache=cache)
