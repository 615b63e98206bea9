"""Token counting for loaders: one tokenizer (cl100k_base, GPT-4's), offline and fast.

Loaders count tens of thousands of prompts; LiteLLM's per-call ``token_counter`` costs tens of
milliseconds each, so we batch-encode with tiktoken directly, reading the cl100k_base file that
LiteLLM bundles (no download). Every data set states that its counts come from this tokenizer;
for non-OpenAI models they are an approximation of the provider's own count.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TOKENIZER_NOTE = "token counts use the cl100k_base tokenizer (GPT-4's) for every model"


@functools.lru_cache(maxsize=1)
def _encoding() -> Any:
    spec = importlib.util.find_spec("litellm")
    if spec is not None and spec.submodule_search_locations and not os.environ.get("TIKTOKEN_CACHE_DIR"):
        bundled = Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"
        if bundled.is_dir():
            os.environ["TIKTOKEN_CACHE_DIR"] = str(bundled)
    import tiktoken

    return tiktoken.get_encoding("cl100k_base")


def count_tokens(texts: Sequence[str]) -> list[int]:
    """Number of cl100k_base tokens of each text."""
    if not texts:
        return []
    return [len(t) for t in _encoding().encode_ordinary_batch([str(x) for x in texts])]
