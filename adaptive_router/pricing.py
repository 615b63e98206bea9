"""Prices and token counts, offline.

Prices come from LiteLLM's model map through its public ``litellm.get_model_info`` (LiteLLM is
imported with ``LITELLM_LOCAL_MODEL_COST_MAP=True`` unless the user chose otherwise, so the
bundled map is used and no newer one is fetched); ``litellm.register_model`` and a proxy's
``model_info`` prices are seen. A fleet file may override any price.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading
from typing import Any

from adaptive_router.errors import PriceNotFoundError


def lookup_price(model: str) -> tuple[float, float]:
    """(input $/token, output $/token) for ``model`` from LiteLLM's model map.

    Asks ``litellm.get_model_info`` (LiteLLM's public lookup, which resolves provider prefixes
    and aliases the way LiteLLM itself does when it bills a call, and sees models added with
    ``litellm.register_model`` or a proxy's ``model_info``) for the name as given, then without
    a ``provider/`` prefix. Raises :class:`PriceNotFoundError` naming the two ways to set a price.
    """
    litellm = _litellm_offline_and_quiet()
    names = [model]
    if "/" in model:
        names.append(model.split("/", 1)[1])
    for name in names:
        info = _model_info(litellm, name)
        if info is not None and _states_token_prices(litellm, info):
            return float(info["input_cost_per_token"]), float(info["output_cost_per_token"])
    raise PriceNotFoundError(
        f"No price for model {model!r} in LiteLLM's price map. Set one in the fleet file, e.g.\n"
        f"  - name: {model}\n"
        f"    price: {{input_per_million: 0.20, output_per_million: 0.60}}\n"
        "or, in a LiteLLM config.yaml, add input_cost_per_token/output_cost_per_token to the "
        "deployment's model_info."
    )


def _model_info(litellm: Any, name: str) -> Any:
    """``litellm.get_model_info(name)``; for a name it cannot place, the map's entry of exactly
    that name (``get_model_info`` needs a recognisable provider, and the map prices a few names
    without one, e.g. ``jamba-1.5-large``, ``j2-mid``); else None.

    LiteLLM prints a provider-list banner to stdout for a name without a provider; that would
    corrupt the CLI's JSON output, so its debug output is suppressed for the lookup."""
    suppressed = litellm.suppress_debug_info
    litellm.suppress_debug_info = True
    try:
        return litellm.get_model_info(name)
    except Exception:  # LiteLLM raises several types for a name it cannot place
        entry = litellm.model_cost.get(name)
        return {**entry, "key": name} if isinstance(entry, dict) else None
    finally:
        litellm.suppress_debug_info = suppressed


def _states_token_prices(litellm: Any, info: Any) -> bool:
    """Whether LiteLLM's entry states flat per-token prices. ``get_model_info`` reports 0 for a
    price the entry does not state (tiered, per-second or per-image pricing), which would make
    such a model silently free: the entry it resolved (``info["key"]`` in the public
    ``litellm.model_cost``) must state both, else the user is asked for a price."""
    entry = litellm.model_cost.get(info.get("key"))
    if not isinstance(entry, dict):  # resolved outside the map: trust LiteLLM's answer
        return info.get("input_cost_per_token") is not None and info.get("output_cost_per_token") is not None
    return entry.get("input_cost_per_token") is not None and entry.get("output_cost_per_token") is not None


class TokenCounter:
    """Counts tokens for one model, offline.

    With a Hugging Face tokenizer folder (``tokenizer=`` in the fleet file) the count is exact;
    otherwise LiteLLM's ``token_counter`` (which uses the provider's tokenizer where LiteLLM ships
    it and tiktoken's cl100k otherwise). ``HF_HUB_OFFLINE=1`` is set for the call so that LiteLLM
    does not spend ~20 s trying to download a Llama tokenizer.
    """

    def __init__(self, model: str, tokenizer: str | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self._hf: Any = None
        self._share_key: tuple[Any, ...] | None = None

    def share_key(self) -> tuple[Any, ...]:
        """Counters with equal keys count every text and chat alike (same tokenizer, same
        per-message accounting), so one count serves them all: a fleet of models that LiteLLM
        counts with the same tiktoken encoding needs one count per prompt, not one per model."""
        if self._share_key is None:
            self._share_key = self._compute_share_key()
        return self._share_key

    def _compute_share_key(self) -> tuple[Any, ...]:
        if self.tokenizer:
            return ("hf", self.tokenizer)
        try:
            # LiteLLM has no public "which encoding does token_counter use for this model";
            # these helpers are the ones token_counter itself calls, so a shared count is the
            # count LiteLLM would give. Any change of its internals falls back below.
            from litellm.litellm_core_utils.token_counter import (
                openai_tokenizer_encoding_name,
                uses_legacy_message_accounting,
            )

            chosen = _litellm_tokenizer(self.model)
            if chosen is None:
                return ("model", self.model)
            if chosen.get("type") == "openai_tokenizer":
                return ("tiktoken", openai_tokenizer_encoding_name(self.model),
                        uses_legacy_message_accounting(self.model))
            return ("litellm", chosen.get("type"), id(chosen.get("tokenizer")),
                    uses_legacy_message_accounting(self.model))
        except Exception:  # another LiteLLM version's internals: count per model, as before
            return ("model", self.model)

    def _hf_tokenizer(self) -> Any:
        if self._hf is None:
            from transformers import AutoTokenizer

            self._hf = AutoTokenizer.from_pretrained(self.tokenizer, local_files_only=True)
        return self._hf

    #: Texts longer than this (characters) are counted on this prefix and extrapolated by
    #: length: an expected cost needs no exact count of a 200k-token prompt, and counting one
    #: exactly took up to half a minute (issue 9). Billed costs use the provider's usage.
    EXACT_COUNT_CHARS = 100_000

    def count_text(self, text: str) -> int:
        if len(text) > self.EXACT_COUNT_CHARS:
            head = self.count_text(text[: self.EXACT_COUNT_CHARS])
            return int(round(head * len(text) / self.EXACT_COUNT_CHARS))
        if self.tokenizer:
            return len(self._hf_tokenizer().encode(text, add_special_tokens=False))
        return _litellm_count(self.model, text=text)

    def count_messages(self, messages: list[dict[str, Any]]) -> int:
        from adaptive_router.prompts import messages_text

        if len(messages_text(messages)) > self.EXACT_COUNT_CHARS:
            return self.count_text(messages_text(messages))
        if self.tokenizer:
            tok = self._hf_tokenizer()
            if getattr(tok, "chat_template", None):
                return len(tok.apply_chat_template(messages, tokenize=True))
            from adaptive_router.prompts import messages_text

            return len(tok.encode(messages_text(messages), add_special_tokens=False))
        return _litellm_count(self.model, messages=messages)


class _QuietTokenizerFallback(logging.Filter):
    """Drops LiteLLM's per-call warning that it fell back to tiktoken (expected offline)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Falling back to tiktoken" not in record.getMessage()


def _keep_token_counting_offline() -> None:
    """Token counting never touches the network.

    For Llama-family names LiteLLM tries to download a tokenizer from the Hugging Face hub
    (~20 s of retries on an offline machine, per process). ``HF_HUB_OFFLINE`` stops that, but
    ``huggingface_hub`` reads it once, at import: when an encoder already imported it, setting
    the variable later is not enough, so the loaded constant is set too. A user who set
    ``HF_HUB_OFFLINE=0`` explicitly keeps the download; for exact counts without it, give the
    model a ``tokenizer:`` folder in the fleet file.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if os.environ["HF_HUB_OFFLINE"].strip().lower() in ("1", "true", "yes", "on"):
        constants = sys.modules.get("huggingface_hub.constants")
        if constants is not None and not getattr(constants, "HF_HUB_OFFLINE", True):
            constants.HF_HUB_OFFLINE = True


def _litellm_offline_and_quiet() -> Any:
    """LiteLLM, imported with token counting kept offline and its fallback warning filtered."""
    _keep_token_counting_offline()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    logger = logging.getLogger("LiteLLM")
    if not any(isinstance(f, _QuietTokenizerFallback) for f in logger.filters):
        logger.addFilter(_QuietTokenizerFallback())
    return litellm


def _litellm_count(model: str, **kwargs: Any) -> int:
    litellm = _litellm_offline_and_quiet()
    return int(litellm.token_counter(model=model, custom_tokenizer=_litellm_tokenizer(model), **kwargs))


_TOKENIZERS: dict[str, Any] = {}
_TOKENIZERS_LOCK = threading.Lock()


def _litellm_tokenizer(model: str) -> Any:
    """LiteLLM's tokenizer choice for ``model``, made once per process; None when this LiteLLM
    has no ``select_tokenizer`` (then the public ``litellm.token_counter`` chooses per call).

    ``litellm.token_counter`` re-selects the tokenizer on every call, and for a model whose
    Hugging Face tokenizer cannot be loaded (offline) it retries the load -- and logs -- every
    time before falling back to tiktoken: ~1 ms per count, most of a routing decision
    (``make bench``; 1.7 ms against 0.05 ms for a Llama name). LiteLLM exposes the choice only
    through ``litellm.utils.select_tokenizer``, which its token_counter itself calls, and passes
    it back through token_counter's public ``custom_tokenizer``. The selection (or its tiktoken
    fallback) does not change within a process.
    """
    chosen = _TOKENIZERS.get(model)
    if chosen is None:
        _litellm_offline_and_quiet()
        try:
            from litellm.utils import select_tokenizer
        except ImportError:
            return None

        with _TOKENIZERS_LOCK:
            chosen = _TOKENIZERS.get(model)
            if chosen is None:
                chosen = _TOKENIZERS[model] = select_tokenizer(model)
    return chosen


@functools.lru_cache(maxsize=256)
def counter_for(model: str, tokenizer: str | None = None) -> TokenCounter:
    """A shared :class:`TokenCounter` per (model, tokenizer)."""
    return TokenCounter(model, tokenizer)
