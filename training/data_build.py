"""Building routing data: prompts x fleet -> Records with samples, scores and token counts.

``adaptive-router data build --prompts FILE --fleet FILE --n 8 --scorer SCORER --out records.jsonl``
is how users make training data on their own hardware: every fleet model draws ``n`` samples
per prompt through its sampler (LiteLLM, local transformers or vLLM, as the fleet says), a
scorer scores every sample, and one :class:`~adaptive_router.records.Record` per prompt is
appended to the output JSONL with real token counts.

Scorers:

- ``answer-checker``: score ``correct`` = 1 when the sample's extracted final answer matches the
  prompt's reference answer (``answer`` / ``reference`` field of the prompts file);
- a reward-model folder (:func:`~adaptive_router.reward_models.load_reward_model`): score
  ``reward`` (use it as a quality score, or as a selector score for best-of-n).

Resumable: prompts whose id is already in the output file are skipped, and each record is
appended (and flushed) as soon as it is complete, so an interrupted run loses at most one prompt.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adaptive_router.domain import Fleet
from adaptive_router.errors import DataError
from adaptive_router.records import ModelSamples, Record, iter_records, write_records


@dataclass
class PromptItem:
    id: str
    prompt: str
    reference: str | None = None
    task: str | None = None


def prompt_id(prompt: str) -> str:
    return hashlib.sha1(prompt.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def read_prompts(path: str | Path) -> list[PromptItem]:
    """Prompts from JSONL (``prompt`` or ``question``; optional ``id``, ``answer``/``reference``,
    ``task``) or from a text file with one prompt per line."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"prompts file {p} does not exist")
    items: list[PromptItem] = []
    with p.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            if p.suffix in (".jsonl", ".json"):
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{p}:{lineno}: not JSON ({exc})") from None
                text = obj.get("prompt") or obj.get("question")
                if not text:
                    raise DataError(f"{p}:{lineno}: no 'prompt' (or 'question') field")
                ref = obj.get("answer", obj.get("reference"))
                items.append(PromptItem(str(obj.get("id") or prompt_id(text)), text,
                                        None if ref is None else str(ref), obj.get("task")))
            else:
                text = line.rstrip("\n")
                items.append(PromptItem(prompt_id(text), text))
    return items


class AnswerChecker:
    """Scores 1.0 when a sample's final answer matches the prompt's reference answer."""

    score_name = "correct"

    def score(self, item: PromptItem, texts: Sequence[str]) -> list[float]:
        from adaptive_router.grading import answers_match, extract_answer

        if item.reference is None:
            raise DataError(f"prompt {item.id!r} has no reference answer; the answer-checker "
                            "scorer needs an 'answer' field in the prompts JSONL")
        return [1.0 if answers_match(extract_answer(t), item.reference) else 0.0 for t in texts]


class RewardScorer:
    """Scores samples with a reward model (score ``reward``)."""

    score_name = "reward"

    def __init__(self, path: str) -> None:
        from adaptive_router.reward_models import load_reward_model

        self.model = load_reward_model(path)

    def score(self, item: PromptItem, texts: Sequence[str]) -> list[float]:
        return [float(s) for s in self.model.score_samples(item.prompt, list(texts))]


def make_scorer(spec: str) -> AnswerChecker | RewardScorer:
    return AnswerChecker() if spec == "answer-checker" else RewardScorer(spec)


def done_ids(path: Path) -> set[str]:
    """Ids already in the output file (a torn last line from an interrupted run is dropped)."""
    if not path.exists():
        return set()
    good: list[Record] = []
    try:
        good = list(iter_records(path))
    except DataError:
        lines = path.read_text(encoding="utf-8").splitlines()
        for line in lines:
            try:
                good.append(Record.model_validate(json.loads(line)))
            except Exception:  # a torn line: rewrite the file without it
                continue
        write_records(good, path)
    return {r.id for r in good}


def build_records(
    prompts: Iterable[PromptItem],
    fleet: Fleet,
    n: int,
    scorer: AnswerChecker | RewardScorer,
    out: str | Path,
    progress: bool = True,
    source: str | None = None,
    **gen: Any,
) -> dict[str, int]:
    """Sample, score and append one Record per prompt not yet in ``out``. Returns counts."""
    from adaptive_router.samplers import sampler_for_model

    out = Path(out)
    items = list(prompts)
    seen = done_ids(out)
    todo = [it for it in items if it.id not in seen]
    samplers = {m.name: sampler_for_model(m) for m in fleet.models}
    bar: Any = todo
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(todo, desc="building records", unit="prompt", initial=len(items) - len(todo),
                   total=len(items))
    written = 0
    for item in bar:
        models = {}
        for name, sampler in samplers.items():
            batch = sampler.sample(item.prompt, n, **gen)
            models[name] = ModelSamples(
                responses=batch.texts, scores={scorer.score_name: scorer.score(item, batch.texts)},
                token_num_prompt=batch.prompt_tokens, token_num_responses=batch.output_tokens,
                estimated_tokens=batch.estimated_tokens)
        meta = {"reference_answer": item.reference} if item.reference is not None else {}
        rec = Record(id=item.id, prompt=item.prompt, task=item.task, source=source,
                     models=models, meta=meta)
        write_records([rec], out, append=True)
        written += 1
    return {"prompts": len(items), "skipped_done": len(items) - len(todo), "written": written}
