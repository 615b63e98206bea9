"""Reward models: Hugging Face sequence classifiers by path, and the project's proxy reward model.

Two implementations of :class:`~adaptive_router.reward.RewardModel`:

- :class:`HFRewardModel`: any Hugging Face sequence-classification reward model in a local
  folder (large ones belong on a GPU). ``trust_remote_code`` stays off unless the caller asks.
- :class:`ProxyRewardModel`: the small reward model ``adaptive-router train-reward`` trains with
  a pairwise (Bradley-Terry) loss. Its backbone is a frozen sentence encoder (MiniLM by default)
  whose embeddings are cached, with a small MLP head on top: scoring n samples costs n encoder
  passes plus a few matrix products, so it is cheap enough to sit in the request path on a CPU.
  BEST-Route trains its proxy RM on exactly such oracle-ranked pairs; we keep the backbone frozen
  because fine-tuning a transformer is out of reach on the CPUs this must train on.

:func:`load_reward_model` tells the two apart by the folder's ``config.json``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from adaptive_router.errors import CheckpointError, ConfigError, RewardModelError
from adaptive_router.persistence import load_config, load_tensors, save_checkpoint
from adaptive_router.reward import RewardModel

PROXY_KIND = "reward_model"
_ANSWER_MARK = re.compile(r"\\boxed|answer is|####|final answer", re.IGNORECASE)


class HFRewardModel(RewardModel):
    """A Hugging Face ``AutoModelForSequenceClassification`` reward model, loaded by path.

    The score of a pair is the single logit when the head has one label (the usual reward-model
    layout), else the log-odds of the last label against the first. When the tokenizer has a chat
    template the pair is formatted as a user turn and an assistant turn (how chat reward models
    were trained); otherwise prompt and response are encoded as a text pair.
    """

    name: ClassVar[str] = "hf"

    def __init__(
        self,
        path: str | Path,
        device: str | None = None,
        trust_remote_code: bool = False,
        max_length: int = 512,
        batch_size: int = 8,
        use_chat_template: bool | None = None,
        cost_per_pair_usd: float = 0.0,
    ) -> None:
        self.path = Path(path)
        if not (self.path / "config.json").exists():
            raise ConfigError(
                f"{self.path} is not a Hugging Face model folder (no config.json); pass the local "
                "folder of a sequence-classification reward model (no hub downloads here)"
            )
        self.device = device
        self.trust_remote_code = trust_remote_code
        self.max_length = max_length
        self.batch_size = batch_size
        self.use_chat_template = use_chat_template
        self.cost_per_pair_usd = cost_per_pair_usd
        self._model: Any = None
        self._tok: Any = None

    def _load(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        try:
            self._tok = AutoTokenizer.from_pretrained(
                self.path, local_files_only=True, trust_remote_code=self.trust_remote_code)
            model = AutoModelForSequenceClassification.from_pretrained(
                self.path, local_files_only=True, trust_remote_code=self.trust_remote_code)
        except (OSError, ValueError) as exc:
            raise RewardModelError(
                f"cannot load the reward model at {self.path}: {exc}. If the model needs custom "
                "code, pass trust_remote_code=True only if you trust its source."
            ) from None
        self.device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._model = model.to(self.device).eval()
        if self._tok.pad_token is None:
            self._tok.pad_token = self._tok.eos_token or self._tok.unk_token
            self._model.config.pad_token_id = self._tok.pad_token_id
        if self.use_chat_template is None:
            self.use_chat_template = bool(getattr(self._tok, "chat_template", None))

    def _score(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        import torch

        self._load()
        if self.use_chat_template:
            texts = [self._tok.apply_chat_template(
                [{"role": "user", "content": p}, {"role": "assistant", "content": r}],
                tokenize=False) for p, r in zip(prompts, responses, strict=True)]
            enc = self._tok(texts, truncation=True, max_length=self.max_length, padding=True,
                            return_tensors="pt")
        else:
            enc = self._tok(list(prompts), list(responses), truncation="longest_first",
                            max_length=self.max_length, padding=True, return_tensors="pt")
        with torch.inference_mode():
            logits = self._model(**{k: v.to(self.device) for k, v in enc.items()}).logits.float()
        if logits.shape[-1] == 1:
            return logits[:, 0].cpu().numpy()
        logp = torch.log_softmax(logits, dim=-1)
        return (logp[:, -1] - logp[:, 0]).cpu().numpy()


def response_features(encoder: Any, prompts: Sequence[str], responses: Sequence[str],
                      tail_chars: int = 400) -> np.ndarray:
    """The proxy reward model's input for (prompt, response) pairs.

    The encoder reads ~256 word pieces at most, and a solution's verdict sits at its end, so the
    response is embedded by its last ``tail_chars`` characters (short texts also keep the
    encoder fast on a CPU). With the prompt's embedding this gives [r, p * r] (the product lets
    a linear layer see prompt-response agreement) plus two scalar cues: the response's length
    (log characters) and whether it states a final answer.
    """
    prompts, responses = list(prompts), list(responses)
    tails = [r[-tail_chars:] for r in responses]
    unique = list(dict.fromkeys(prompts + tails))
    index = {t: i for i, t in enumerate(unique)}
    emb = encoder.encode(unique)
    p = emb[[index[t] for t in prompts]]
    r = emb[[index[t] for t in tails]]
    length = np.log1p([len(x) for x in responses])[:, None] / 8.0
    marked = np.array([[1.0 if _ANSWER_MARK.search(x) else 0.0] for x in responses]).reshape(-1, 1)
    return np.concatenate([r, p * r, length, marked], axis=1).astype(np.float32)


class ProxyRewardModel(RewardModel):
    """A small reward model: frozen sentence-encoder features and an MLP head, scored in numpy.

    Train it with :func:`adaptive_router.training.reward_training.train_reward_model` (the CLI's
    ``train-reward``); load it with :func:`load_reward_model` or :meth:`from_pretrained`.
    """

    name: ClassVar[str] = "proxy"

    def __init__(
        self,
        encoder: str = "minilm",
        hidden: int = 128,
        tail_chars: int = 400,
        weights: dict[str, np.ndarray] | None = None,
        disk_cache: str | Path | None = None,
        batch_size: int = 64,
        metrics: dict[str, Any] | None = None,
    ) -> None:
        self.encoder_name = encoder
        self.hidden = hidden
        self.tail_chars = tail_chars
        self.weights = dict(weights or {})
        self.disk_cache = disk_cache
        self.batch_size = batch_size
        self.metrics = dict(metrics or {})
        self._encoder: Any = None

    @property
    def encoder(self) -> Any:
        if self._encoder is None:
            from adaptive_router.encoders import shared_encoder

            self._encoder = shared_encoder(self.encoder_name, disk_cache=self.disk_cache)
        return self._encoder

    def features(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        return response_features(self.encoder, prompts, responses, self.tail_chars)

    def score_features(self, x: np.ndarray) -> np.ndarray:
        """The head's score for precomputed features (training evaluates with this)."""
        if not self.weights:
            raise RewardModelError("this proxy reward model is untrained; run `adaptive-router "
                                   "train-reward` or load a trained folder")
        w = self.weights
        h = np.maximum(0.0, x @ w["w1"].T + w["b1"])
        return (h @ w["w2"].T + w["b2"])[:, 0]

    def _score(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        return self.score_features(self.features(prompts, responses))

    # -- persistence -------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> Path:
        cfg = {"reward_type": "proxy", "encoder": self.encoder_name, "hidden": self.hidden,
               "tail_chars": self.tail_chars, "metrics": self.metrics}
        return save_checkpoint(directory, PROXY_KIND, cfg, self.weights)

    @classmethod
    def from_pretrained(cls, directory: str | Path, disk_cache: str | Path | None = None) -> ProxyRewardModel:
        cfg = load_config(directory, expect_kind=PROXY_KIND)
        tensors = load_tensors(directory)
        missing = {"w1", "b1", "w2", "b2"} - set(tensors)
        if missing:
            raise CheckpointError(f"{directory} lacks reward-head tensors {sorted(missing)}; retrain it")
        return cls(encoder=cfg.get("encoder", "minilm"), hidden=int(cfg.get("hidden", 128)),
                   tail_chars=int(cfg.get("tail_chars", 400)), weights=tensors,
                   disk_cache=disk_cache, metrics=cfg.get("metrics"))


def load_reward_model(path_or_name: str | Path, **kwargs: Any) -> RewardModel:
    """A reward model from a folder: a proxy RM saved by ``train-reward``, or any Hugging Face
    sequence-classification model (``trust_remote_code=True`` only when passed explicitly)."""
    path = Path(path_or_name)
    cfg_path = path / "config.json"
    if not cfg_path.exists():
        raise ConfigError(
            f"reward model {str(path_or_name)!r} is not a folder with a config.json: pass a folder "
            "written by `adaptive-router train-reward`, or a local Hugging Face "
            "sequence-classification model folder"
        )
    import json

    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{cfg_path} is not valid JSON ({exc})") from None
    if cfg.get("format") == "adaptive-router":
        if cfg.get("kind") != PROXY_KIND:
            raise CheckpointError(f"{path} holds a {cfg.get('kind')!r} checkpoint, not a reward model")
        return ProxyRewardModel.from_pretrained(path, **kwargs)
    return HFRewardModel(path, **kwargs)


__all__ = ["HFRewardModel", "ProxyRewardModel", "load_reward_model", "response_features"]
