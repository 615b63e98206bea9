"""CHAMP (``champ-dataset`` on PyPI, MIT): 270 competition-math problems, four models, many
prompt settings — a real multi-model, multi-sample table that works offline.

Each conversation ends with a model turn that states the final answer in one sentence (the
prompt asks "summarize the answer above in one sentence"). Correctness (score ``correct``) is
derived by extracting that final answer and matching it with the problem's reference answer
(:mod:`adaptive_router.grading`); the README reports the extractor's agreement with a
hand-checked sample.

Samples: of the 18 prompt settings, ``1/3 Soln``, ``2/3 Soln`` and every ``... w/ H`` setting
show part of the solution or hints, so their responses are not samples of the same prompt. We
use the nine settings that give nothing away as nine samples per model: :data:`SAMPLE_SETTINGS`
(0-Shot, 5-Shot and the seven concept settings without hints). The record's prompt is the
0-shot problem statement.

Tokens: output tokens of a sample are the real (cl100k_base) counts of its solution turn plus
its final-answer turn; prompt tokens are those of the 0-shot prompt (system + user message).

Prices (LiteLLM's map, nearest names): GPT-3.5 as ``gpt-3.5-turbo``, GPT-4 as ``gpt-4``, GPT-4
Turbo as ``gpt-4-turbo``, PaLM 2 Medium as ``gemini-2.5-flash-lite`` (the map has no PaLM 2 /
bison entry; this is Google's cheapest current text model, like PaLM 2 was in its time).
"""

from __future__ import annotations

import functools
from pathlib import Path

from adaptive_router.training.loaders.dataset import RoutingDataset
from adaptive_router.training.loaders.tokens import TOKENIZER_NOTE, count_tokens

from adaptive_router.domain import Fleet
from adaptive_router.errors import DataError
from adaptive_router.grading import grade
from adaptive_router.records import ModelSamples, Record

#: The prompt settings whose responses stand in for repeated samples of one prompt.
SAMPLE_SETTINGS = (
    "0-Shot", "5-Shot", "No C w/o H", "Direct C w/o H", "Root C w/o H", "Name C w/o H",
    "Example C w/o H", "Problem C w/o H", "Misleading C w/o H",
)
#: CHAMP's model label -> (our model name, LiteLLM price-map name).
MODELS = {
    "GPT-3.5": ("gpt-3.5-turbo", "gpt-3.5-turbo"),
    "GPT-4": ("gpt-4", "gpt-4"),
    "GPT-4 Turbo": ("gpt-4-turbo", "gpt-4-turbo"),
    "PaLM 2 Medium": ("palm-2-medium", "gemini-2.5-flash-lite"),
}
REFERENCE = "gpt-4-turbo"
SYSTEM_PROMPT = "You are an expert on mathematics."
ZERO_SHOT = ("Solve the following problem. Make sure to show your work before giving the final "
             "answer.\n\n{problem}")


def champ_fleet() -> Fleet:
    return Fleet.from_dict({
        "models": [{"name": ours, "price_model": priced} for ours, priced in MODELS.values()],
        "reference": REFERENCE,
        "selector": "majority",
    })


def _turns(conversation) -> tuple[str, str | None]:
    """(solution text, final-answer text) of one CHAMP conversation: its last two model turns."""
    model_turns = [m for m in conversation.messages if m.role.startswith("Model.")]
    if not model_turns:
        return "", None
    if len(model_turns) == 1:
        return model_turns[-1].text or "", None
    return model_turns[-2].text or "", model_turns[-1].text


def grade_champ(solution: str, final: str | None, reference: str) -> bool:
    """Correct when the final-answer turn's extracted answer matches the reference; when that
    turn is missing (the model ran out of length) the solution's own final answer is used."""
    text = final if final and final.strip() else solution
    return grade(text, reference)


@functools.lru_cache(maxsize=4)
def _champ_table(settings: tuple[str, ...]) -> tuple[list[tuple[str, str, str, str]], list[int],
                                                     dict[tuple[int, str], dict[str, list]]]:
    """The graded, token-counted table (computed once per process: grading ~10k responses
    and counting their tokens is the slow part; records are rebuilt fresh on every load)."""
    try:
        import champ_dataset
    except ImportError:
        raise DataError("the champ data set needs the champ-dataset package: pip install champ-dataset") from None
    ds = champ_dataset.load("v0")
    problems = list(ds.problems.values())
    prompts = [ZERO_SHOT.format(problem=p.text) for p in problems]
    p_tok = count_tokens([SYSTEM_PROMPT + "\n" + x for x in prompts])
    # gather every sample first, then count all tokens in one batch
    texts: list[str] = []
    samples: list[tuple[int, str, str, str | None]] = []
    for i, p in enumerate(problems):
        for label in MODELS:
            for setting in settings:
                conv = p.conversations.get(f"{label}|{setting}")
                if conv is None:
                    raise DataError(f"CHAMP problem {p.identifier} lacks setting {label}|{setting}")
                solution, final = _turns(conv)
                samples.append((i, label, solution, final))
                texts.append(solution)
                texts.append(final or "")
    tok = count_tokens(texts)
    per: dict[tuple[int, str], dict[str, list]] = {}
    for j, (i, label, solution, final) in enumerate(samples):
        slot = per.setdefault((i, label), {"responses": [], "correct": [], "tokens": []})
        response = solution if not final else f"{solution}\n\n{final}"
        slot["responses"].append(response)
        slot["correct"].append(1.0 if grade_champ(solution, final, problems[i].answer) else 0.0)
        slot["tokens"].append(tok[2 * j] + tok[2 * j + 1])
    rows = [(p.identifier, prompts[i], p.category, p.answer) for i, p in enumerate(problems)]
    return rows, p_tok, per


def load_champ(data_dir: str | Path | None = None, settings: tuple[str, ...] = SAMPLE_SETTINGS) -> RoutingDataset:
    """270 problems x 4 models x ``len(settings)`` samples, correctness by answer matching.

    ``data_dir`` is accepted for a uniform loader signature; the data come from the installed
    ``champ-dataset`` package.
    """
    rows, p_tok, per = _champ_table(tuple(settings))
    records = []
    for i, (ident, prompt, category, answer) in enumerate(rows):
        models = {
            ours: ModelSamples(responses=list(per[(i, label)]["responses"]),
                               scores={"correct": list(per[(i, label)]["correct"])},
                               token_num_prompt=p_tok[i],
                               token_num_responses=list(per[(i, label)]["tokens"]))
            for label, (ours, _) in MODELS.items()
        }
        records.append(Record(id=f"champ-{ident}", prompt=prompt, source="champ", task=category,
                              models=models, meta={"answer": answer, "settings": list(settings)}))
    return RoutingDataset(
        name="champ", records=records, models=[ours for ours, _ in MODELS.values()],
        quality_score="correct", fleet=champ_fleet(),
        notes=[
            "samples: the 9 CHAMP prompt settings that give nothing away: " + ", ".join(settings),
            "correct = extracted final answer matches the reference (adaptive_router.grading)",
            "prices (LiteLLM map, nearest names): GPT-3.5 as gpt-3.5-turbo, GPT-4 as gpt-4, "
            "GPT-4 Turbo as gpt-4-turbo, PaLM 2 Medium as gemini-2.5-flash-lite",
            TOKENIZER_NOTE + "; prompt tokens are the 0-shot prompt's",
        ],
    )
