"""LLMRouter's nine-model score table (ulab-uiuc/LLMRouter, MIT).

``train.json`` / ``test.json`` hold, per question, a score in [0, 1] for each of nine open
models (the task's own metric: exact match, F1, pass@1...); ``default_query_*.jsonl`` give each
question's task. The upstream train/test split is kept as each record's ``split``.

There are no responses, so no output token counts: prompt tokens are counted (cl100k_base) and
output tokens are *estimated per task* (:data:`OUTPUT_TOKENS_BY_TASK`); every record is flagged
``estimated_tokens`` and the data set's notes say so. Prices come from ``default_llm.json``
(dollars per million tokens, NVIDIA's hosted prices).
"""

from __future__ import annotations

import json
from pathlib import Path

from adaptive_router.training.loaders.dataset import RoutingDataset
from adaptive_router.training.loaders.paths import resolve_data_root
from adaptive_router.training.loaders.tokens import TOKENIZER_NOTE, count_tokens

from adaptive_router.domain import Fleet
from adaptive_router.errors import DataError
from adaptive_router.records import ModelSamples, Record

#: Estimated output tokens of one answer, per task: short labels for multiple choice and
#: closed-book QA, a worked solution for math word problems, a function for code tasks.
OUTPUT_TOKENS_BY_TASK: dict[str, int] = {
    "mmlu": 8, "commonsense_qa": 8, "openbook_qa": 8, "arc_challenge": 8, "gpqa": 8,
    "natural_qa": 24, "trivia_qa": 24,
    "commongen": 48,
    "mbpp": 160, "human_eval": 160,
    "gsm8k": 220, "agentverse-mgsm": 260, "agentverse-logicgrid": 300, "math": 380,
}
DEFAULT_OUTPUT_TOKENS = 128
REFERENCE = "llama-3.1-nemotron-51b-instruct"


def _read_json(path: Path):
    if not path.exists():
        raise DataError(f"{path} is missing from the llmrouter folder")
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


def _tasks(root: Path) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for name in ("default_query_train.jsonl", "default_query_test.jsonl"):
        with (root / name).open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    row = json.loads(line)
                    out.setdefault(row["query"], row)
    return out


def llmrouter_fleet(root: Path, names: list[str]) -> Fleet:
    """The scored models (``names``) priced from ``default_llm.json`` ($ per million tokens)."""
    table = _read_json(root / "default_llm.json")
    unpriced = [n for n in names if n not in table]
    if unpriced:
        raise DataError(f"default_llm.json has no price for {unpriced}")
    table = {n: table[n] for n in names}
    models = [{"name": name, "litellm_model": spec.get("model") or name,
               "price": {"input_per_million": float(spec["input_price"]),
                         "output_per_million": float(spec["output_price"])}}
              for name, spec in table.items()]
    return Fleet.from_dict({"models": models, "reference": REFERENCE})


def load_llmrouter(data_dir: str | Path | None = None) -> RoutingDataset:
    """6,108 questions x 9 models, quality ``score`` in [0, 1], upstream train/test split."""
    root = resolve_data_root("llmrouter", data_dir) / "llmrouter"
    tasks = _tasks(root)
    rows = [("train", r) for r in _read_json(root / "train.json")] + \
           [("test", r) for r in _read_json(root / "test.json")]
    if not rows:
        raise DataError(f"{root} holds no llmrouter questions")
    fleet = llmrouter_fleet(root, list(rows[0][1]["scores"]))
    models = fleet.model_names
    p_tok = count_tokens([r["question"] for _, r in rows])
    records = []
    unknown_task = 0
    for i, ((split, row), tok) in enumerate(zip(rows, p_tok, strict=True)):
        missing = [m for m in models if m not in row["scores"]]
        if missing:
            raise DataError(f"llmrouter row {i} has no score for {missing}")
        info = tasks.get(row["question"], {})
        task = info.get("task_name")
        if task is None:
            unknown_task += 1
        out_tok = OUTPUT_TOKENS_BY_TASK.get(task or "", DEFAULT_OUTPUT_TOKENS)
        records.append(Record(
            id=f"llmrouter-{split}-{i}", prompt=row["question"], source="llmrouter", split=split,
            task=task,
            meta={"cluster_id": row.get("cluster_id"), "metric": info.get("metric"),
                  "ground_truth": info.get("ground_truth")},
            models={m: ModelSamples(scores={"score": [float(row["scores"][m])]},
                                    token_num_prompt=tok, token_num_responses=[out_tok],
                                    estimated_tokens=True)
                    for m in models},
        ))
    notes = [
        "prices: default_llm.json (dollars per million tokens)",
        TOKENIZER_NOTE,
        "output tokens ESTIMATED per task (no responses recorded): "
        + ", ".join(f"{k} {v}" for k, v in OUTPUT_TOKENS_BY_TASK.items()),
        "quality 'score' = the task's own metric in [0, 1] (exact match, F1, pass@1...)",
    ]
    if unknown_task:
        notes.append(f"{unknown_task} questions have no task entry; {DEFAULT_OUTPUT_TOKENS} output tokens assumed")
    return RoutingDataset(name="llmrouter", records=records, models=models, quality_score="score",
                          fleet=fleet, notes=notes)
