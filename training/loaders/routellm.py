"""RouteLLM's two-model evaluation tables: MMLU, GSM8K and MT-Bench.

Strong model ``gpt-4-1106-preview``, weak model ``mistralai/Mixtral-8x7B-Instruct-v0.1``
(lm-sys/RouteLLM, Apache-2.0). The prompts RouteLLM lists as contaminated (cosine >= 0.95 to a
prompt of its training data) are dropped, as RouteLLM's own evaluation does.

Quality scores: ``correct`` (0/1) for MMLU and GSM8K; ``judge`` for MT-Bench, the GPT-4
single-answer score (1-10) averaged over the question's two turns and divided by 10.

Prices: GPT-4 Turbo from LiteLLM's map under its own name; Mixtral-8x7B-Instruct from LiteLLM's
map under ``together_ai/mistralai/Mixtral-8x7B-Instruct-v0.1`` ($0.60 / $0.60 per million
tokens), the same model served by Together AI.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from adaptive_router.training.loaders.dataset import RoutingDataset
from adaptive_router.training.loaders.paths import MMLU_SUBJECTS, resolve_data_root
from adaptive_router.training.loaders.tokens import TOKENIZER_NOTE, count_tokens

from adaptive_router.domain import Fleet
from adaptive_router.errors import DataError
from adaptive_router.records import ModelSamples, Record

STRONG = "gpt-4-1106-preview"
WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
WEAK_PRICE_MODEL = "together_ai/mistralai/Mixtral-8x7B-Instruct-v0.1"
#: MMLU tables hold correctness only; an answer is one letter (" B") plus end of turn.
MMLU_OUTPUT_TOKENS = 2

csv.field_size_limit(10**8)


def routellm_fleet() -> Fleet:
    """The two RouteLLM models, priced (GPT-4 Turbo the reference)."""
    return Fleet.from_dict({
        "models": [{"name": WEAK, "price_model": WEAK_PRICE_MODEL},
                   {"name": STRONG}],
        "reference": STRONG,
    })


def _contaminated(path: Path) -> set[str]:
    if not path.exists():
        raise DataError(f"{path} is missing; the RouteLLM folder must include contaminated_prompts.jsonl")
    with path.open(encoding="utf-8") as fh:
        return {json.loads(line)["eval_prompt"].strip() for line in fh if line.strip()}


def _bool(v: str) -> float:
    return 1.0 if str(v).strip().lower() in ("true", "1", "1.0") else 0.0


def _notes(extra: list[str]) -> list[str]:
    return [f"prices: {STRONG} from LiteLLM's map; {WEAK} priced as {WEAK_PRICE_MODEL} "
            "($0.60/$0.60 per 1M tokens)", TOKENIZER_NOTE, *extra]


def load_mmlu(data_dir: str | Path | None = None) -> RoutingDataset:
    """14,042 MMLU questions (57 subjects) minus the 5 contaminated, both models' correctness."""
    root = resolve_data_root("routellm-mmlu", data_dir) / "routellm" / "mmlu"
    bad = _contaminated(root / "contaminated_prompts.jsonl")
    rows: list[tuple[str, str, float, float]] = []
    for subject in MMLU_SUBJECTS:
        path = root / "responses" / f"mmlu_{subject}.csv"
        with path.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                rows.append((subject, row["prompt"], _bool(row[WEAK]), _bool(row[STRONG])))
    tokens = count_tokens([r[1] for r in rows])
    records = []
    dropped = 0
    for i, ((subject, prompt, weak, strong), tok) in enumerate(zip(rows, tokens, strict=True)):
        if prompt.strip() in bad:
            dropped += 1
            continue
        records.append(Record(
            id=f"mmlu-{i}", prompt=prompt, source="routellm-mmlu", task=subject,
            models={
                m: ModelSamples(scores={"correct": [c]}, token_num_prompt=tok,
                                token_num_responses=[MMLU_OUTPUT_TOKENS], estimated_tokens=True)
                for m, c in ((WEAK, weak), (STRONG, strong))
            },
        ))
    return RoutingDataset(
        name="routellm-mmlu", records=records, models=[WEAK, STRONG], quality_score="correct",
        fleet=routellm_fleet(),
        notes=_notes([f"dropped {dropped} contaminated prompts",
                      f"output tokens estimated: {MMLU_OUTPUT_TOKENS} per answer (a letter); "
                      "the tables hold no responses"]),
    )


def load_gsm8k(data_dir: str | Path | None = None) -> RoutingDataset:
    """GSM8K test (1,319) minus the 12 contaminated: correctness and both models' solutions."""
    root = resolve_data_root("routellm-gsm8k", data_dir) / "routellm" / "gsm8k"
    bad = _contaminated(root / "contaminated_prompts.jsonl")
    with (root / "gsm8k_responses.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    prompts = [r["prompt"] for r in rows]
    p_tok = count_tokens(prompts)
    w_tok = count_tokens([r[f"{WEAK}_response"] for r in rows])
    s_tok = count_tokens([r[f"{STRONG}_response"] for r in rows])
    answers = _gsm8k_answers(root / "test.jsonl")
    records = []
    dropped = 0
    for i, row in enumerate(rows):
        if row["prompt"].strip() in bad:
            dropped += 1
            continue
        meta = {"answer": answers[row["prompt"].strip()]} if row["prompt"].strip() in answers else {}
        records.append(Record(
            id=f"gsm8k-{i}", prompt=row["prompt"], source="routellm-gsm8k", task="gsm8k", meta=meta,
            models={
                WEAK: ModelSamples(responses=[row[f"{WEAK}_response"]],
                                   scores={"correct": [_bool(row[WEAK])]},
                                   token_num_prompt=p_tok[i], token_num_responses=[w_tok[i]]),
                STRONG: ModelSamples(responses=[row[f"{STRONG}_response"]],
                                     scores={"correct": [_bool(row[STRONG])]},
                                     token_num_prompt=p_tok[i], token_num_responses=[s_tok[i]]),
            },
        ))
    return RoutingDataset(
        name="routellm-gsm8k", records=records, models=[WEAK, STRONG], quality_score="correct",
        fleet=routellm_fleet(),
        notes=_notes([f"dropped {dropped} contaminated prompts",
                      "output tokens counted from the recorded solutions"]),
    )


def _gsm8k_answers(path: Path) -> dict[str, str]:
    """question -> final numeric answer (after ``####``) of the GSM8K test set, when present."""
    if not path.exists():
        return {}
    out = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                out[row["question"].strip()] = row["answer"].split("####")[-1].strip()
    return out


_TURN = re.compile(r"### (User|Assistant A):\n(.*?)(?=\n\n### (?:User|Assistant A):\n|\n\n<\|The End of)",
                   re.DOTALL)


def _conversation_answers(user_prompt: str) -> list[str]:
    """The assistant's answers in an MT-Bench multi-turn judge prompt."""
    block = user_prompt.split("<|The Start of Assistant A's Conversation with User|>", 1)[-1]
    return [text.strip() for who, text in _TURN.findall(block) if who == "Assistant A"]


def load_mtbench(data_dir: str | Path | None = None) -> RoutingDataset:
    """MT-Bench's 80 two-turn questions minus the 8 contaminated; quality = mean judge score / 10."""
    root = resolve_data_root("routellm-mtbench", data_dir) / "routellm" / "mt_bench"
    bad = _contaminated(root / "contaminated_prompts.jsonl")
    with (root / "question.jsonl").open(encoding="utf-8") as fh:
        questions = [json.loads(line) for line in fh if line.strip()]
    scores: dict[tuple[int, str], dict[int, float]] = {}
    answers: dict[tuple[int, str], list[str]] = {}
    with (root / "judgements.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            j = json.loads(line)
            key = (int(j["question_id"]), j["model"])
            scores.setdefault(key, {})[int(j["turn"])] = float(j["score"])
            if j["turn"] == 2 or "multi-turn" in j["judge"][1]:
                answers[key] = _conversation_answers(j["user_prompt"])
    records = []
    dropped = 0
    for q in questions:
        qid = int(q["question_id"])
        turn1 = q["turns"][0]
        if turn1.strip() in bad:
            dropped += 1
            continue
        models = {}
        p_tok = sum(count_tokens(q["turns"]))
        for m in (WEAK, STRONG):
            s = scores.get((qid, m), {})
            if set(s) != {1, 2} or any(v < 0 for v in s.values()):
                raise DataError(f"MT-Bench question {qid} lacks valid judge scores for {m}: {s}")
            ans = answers.get((qid, m), [])
            text = "\n\n".join(ans)
            models[m] = ModelSamples(
                responses=[text], scores={"judge": [(s[1] + s[2]) / 2 / 10.0]},
                token_num_prompt=p_tok, token_num_responses=[sum(count_tokens(ans)) if ans else 0])
        records.append(Record(id=f"mtbench-{qid}", prompt=turn1, source="routellm-mtbench",
                              task=q.get("category"), models=models,
                              meta={"turns": q["turns"]}))
    return RoutingDataset(
        name="routellm-mtbench", records=records, models=[WEAK, STRONG], quality_score="judge",
        fleet=routellm_fleet(),
        notes=_notes([f"dropped {dropped} contaminated questions",
                      "quality 'judge' = GPT-4 score (1-10) averaged over both turns, divided by 10",
                      "prompt tokens = both user turns; output tokens counted from both answers"]),
    )
