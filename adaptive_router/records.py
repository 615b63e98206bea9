"""The Record: one prompt with, per model, its samples, scores and token counts.

The one data format that sampling writes, training reads, evaluation replays and traffic logs
convert to. It is BEST-Route's JSONL made typed::

    {"id": "...", "prompt": "...", "source": "champ", "split": "train",
     "models": {"gpt-4": {"responses": [...], "scores": {"correct": [1, 0, 1]},
                          "token_num_prompt": 312, "token_num_responses": [120, 98, 140],
                          "cost_usd": [0.0041, 0.0037, 0.0045]}}}

``cost_usd`` (optional; older records have none) is what each answer really cost, as billed;
where present it wins over price x tokens (a provider's own bill knows discounts, cached
prompts and models that LiteLLM's price map does not).

Reading also accepts BEST-Route's flat layout, where each model is a top-level key and scores
are ``<name>_scores`` lists.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, model_serializer, model_validator

from adaptive_router.errors import DataError

_RESERVED = {"id", "prompt", "source", "split", "task", "meta", "models"}


class ModelSamples(BaseModel):
    """One model's samples for one prompt."""

    responses: list[str] = Field(default_factory=list)
    scores: dict[str, list[float]] = Field(default_factory=dict)
    token_num_prompt: int = Field(default=0, ge=0)
    token_num_responses: list[int] = Field(default_factory=list)
    estimated_tokens: bool = Field(
        default=False, description="token counts are estimates, not counted from real outputs"
    )
    cost_usd: list[float] | None = Field(
        default=None, description="what each sample really cost in dollars, as billed (prompt "
        "included); where present, evaluation and training use it instead of price x tokens")

    @model_validator(mode="after")
    def _lengths_agree(self) -> ModelSamples:
        n = self.num_samples
        if self.responses and self.token_num_responses and len(self.responses) != len(
            self.token_num_responses
        ):
            raise ValueError(
                f"{len(self.responses)} responses but {len(self.token_num_responses)} token counts"
            )
        for name, vals in self.scores.items():
            if n and len(vals) != n:
                raise ValueError(f"score {name!r} has {len(vals)} values for {n} samples")
        if self.cost_usd is not None:
            if n and len(self.cost_usd) != n:
                raise ValueError(f"cost_usd has {len(self.cost_usd)} values for {n} samples")
            if any(c < 0 for c in self.cost_usd):
                raise ValueError(f"cost_usd must be >= 0, got {self.cost_usd}")
        return self

    @model_serializer(mode="wrap")
    def _without_absent_cost(self, handler: Any) -> Any:
        """Records without costs are written exactly as before the field existed."""
        data = handler(self)
        if isinstance(data, dict) and data.get("cost_usd", 0) is None:
            data.pop("cost_usd")
        return data

    @property
    def num_samples(self) -> int:
        if self.token_num_responses:
            return len(self.token_num_responses)
        if self.responses:
            return len(self.responses)
        return max((len(v) for v in self.scores.values()), default=0)

    def score(self, name: str) -> list[float]:
        try:
            return self.scores[name]
        except KeyError:
            raise DataError(
                f"no score {name!r} for this model; scores present: {sorted(self.scores)}"
            ) from None


class Record(BaseModel):
    """One prompt and what every model answered."""

    id: str
    prompt: str
    source: str | None = None
    split: str | None = None
    task: str | None = None
    models: dict[str, ModelSamples] = Field(default_factory=dict)
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _accept_flat(cls, data: Any) -> Any:
        """Accept BEST-Route's flat layout (models as top-level keys, ``<name>_scores``)."""
        if not isinstance(data, dict) or "models" in data:
            return data
        out = {k: v for k, v in data.items() if k in _RESERVED}
        models = {}
        for key, val in data.items():
            if key in _RESERVED or not isinstance(val, dict):
                continue
            if "responses" in val or "token_num_responses" in val:
                scores = {
                    k[: -len("_scores")]: v for k, v in val.items() if k.endswith("_scores")
                }
                models[key] = {
                    "responses": val.get("responses", []),
                    "scores": scores,
                    "token_num_prompt": val.get("token_num_prompt", 0),
                    "token_num_responses": val.get("token_num_responses", []),
                    **({"cost_usd": val["cost_usd"]} if val.get("cost_usd") is not None else {}),
                }
        out["models"] = models
        if "id" in out:
            out["id"] = str(out["id"])
        return out

    def samples(self, model: str) -> ModelSamples:
        try:
            return self.models[model]
        except KeyError:
            raise DataError(
                f"record {self.id!r} has no samples for model {model!r}; it has {sorted(self.models)}"
            ) from None


def write_records(records: Iterable[Record], path: str | Path, append: bool = False) -> int:
    """Write records as JSONL (atomically when not appending). Returns the count written."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    if append:
        with p.open("a", encoding="utf-8") as fh:
            for r in records:
                fh.write(r.model_dump_json(exclude_defaults=False) + "\n")
                count += 1
        return count
    tmp = p.with_suffix(p.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(r.model_dump_json() + "\n")
            count += 1
    os.replace(tmp, p)
    return count


def iter_records(path: str | Path) -> Iterator[Record]:
    """Read records from JSONL; a bad line is a :class:`DataError` naming file and line."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"records file {p} does not exist")
    with p.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield Record.model_validate(json.loads(line))
            except (json.JSONDecodeError, ValidationError) as exc:
                raise DataError(f"{p}:{lineno}: not a valid record: {exc}") from None


def read_records(path: str | Path) -> list[Record]:
    return list(iter_records(path))
