"""Small replay Records and a prior router for the LiteLLM tests (texts written for the tests).

Token counts are the recorded values the replay provider must report and the cost must use.
The gpt-4o-mini samples are built so that a majority vote has one right answer to keep.
"""

from __future__ import annotations

from pathlib import Path

from adaptive_router.records import ModelSamples, Record, write_records
from adaptive_router.routers.prior import PriorRouter

#: prompt -> (prompt tokens, gpt-4o sample, gpt-4o-mini samples, the majority's final answer)
REPLAY = {
    "What is 7 times 8?": (
        14, ("7 times 8 is 56. The answer is 56.", 14),
        [("7 x 8 = 56. The answer is 56.", 13), ("7 x 8 = 54. The answer is 54.", 13),
         ("Seven eights make 56. The answer is 56.", 12)], "56"),
    "What is the square root of 144?": (
        16, ("12 x 12 = 144, so the square root is 12. The answer is 12.", 21),
        [("The square root of 144 is 14. The answer is 14.", 15),
         ("Since 12 squared is 144, the answer is 12.", 14),
         ("sqrt(144) = 12. The answer is 12.", 11)], "12"),
    "How many minutes are in 3.5 hours?": (
        18, ("3.5 x 60 = 210 minutes. The answer is 210.", 16),
        [("3.5 hours is 210 minutes. The answer is 210.", 14),
         ("60 x 3.5 = 210. The answer is 210.", 13),
         ("3 hours and 50 minutes is 230 minutes. The answer is 230.", 17)], "210"),
    "A book costs 12 dollars and a pen costs 3 dollars. What do 2 books and 4 pens cost?": (
        30, ("2 x 12 + 4 x 3 = 24 + 12 = 36 dollars. The answer is 36.", 27),
        [("Books 24, pens 12, total 36. The answer is 36.", 17),
         ("2 books are 24 and 4 pens are 7, total 31. The answer is 31.", 22),
         ("24 + 12 = 36. The answer is 36.", 13)], "36"),
}

PRIORS = {"gpt-4o#1": 0.9, "gpt-4o-mini#1": 0.5, "gpt-4o-mini#3": 0.7}
PRICES = {"gpt-4o": (2.5e-06, 1.0e-05), "gpt-4o-mini": (1.5e-07, 6.0e-07)}  # examples/litellm/config.yaml


def replay_records() -> list[Record]:
    out = []
    for i, (prompt, (ptok, (strong, stok), weak, _)) in enumerate(REPLAY.items()):
        out.append(Record(id=f"t{i}", prompt=prompt, source="tests", models={
            "gpt-4o": ModelSamples(responses=[strong], token_num_prompt=ptok, token_num_responses=[stok]),
            "gpt-4o-mini": ModelSamples(responses=[t for t, _ in weak], token_num_prompt=ptok,
                                        token_num_responses=[k for _, k in weak]),
        }))
    return out


def write_fixtures(folder: Path) -> tuple[Path, Path]:
    """Records JSONL and a prior router checkpoint in ``folder``; returns their paths."""
    records = folder / "replay.jsonl"
    write_records(replay_records(), records)
    router = folder / "router"
    PriorRouter(list(PRIORS), PRIORS).save_pretrained(router)
    return records, router


def cost(model: str, prompt_tokens: int, output_tokens: list[int]) -> float:
    inp, out = PRICES[model]
    return prompt_tokens * inp + sum(output_tokens) * out
