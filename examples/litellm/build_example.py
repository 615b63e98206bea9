"""Build the LiteLLM example's replay records and its router (run from the repository root).

    .venv/bin/python examples/litellm/build_example.py

Writes ``examples/litellm/records.jsonl`` (eight short math questions with recorded answers of
``gpt-4o`` (1 sample) and ``gpt-4o-mini`` (3 samples), each scored ``correct`` and with its token
counts from the gpt-4o tokenizer, o200k) and ``examples/litellm/router/`` (a prior router fit on
them; see adaptive_router/routers/prior.py). The answers were written for this example; they
illustrate the mechanics (routing, n, majority vote, cost), not any model's real accuracy. For
real replay data use ``adaptive-router data export --data champ --out FILE.jsonl``.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from adaptive_router.domain import Fleet  # noqa: E402
from adaptive_router.grading import answers_match, extract_answer  # noqa: E402
from adaptive_router.pricing import counter_for  # noqa: E402
from adaptive_router.records import ModelSamples, Record, write_records  # noqa: E402
from adaptive_router.routers.prior import PriorRouter  # noqa: E402

HERE = Path(__file__).resolve().parent

# (question, reference answer, gpt-4o answer, three gpt-4o-mini answers)
QUESTIONS: list[tuple[str, str, str, list[str]]] = [
    (
        "A train travels 180 km in 2.5 hours. What is its average speed in km/h?",
        "72",
        "Average speed is distance divided by time: 180 / 2.5 = 72 km/h. The answer is 72.",
        ["Speed = 180 km / 2.5 h = 72 km/h. The answer is 72.",
         "180 divided by 2.5 gives 72, so the average speed is 72 km/h. The answer is 72.",
         "Dividing 180 by 2 gives 90 km/h. The answer is 90."],
    ),
    (
        "What is the sum of the first 20 positive integers?",
        "210",
        "Using n(n+1)/2 with n = 20: 20 x 21 / 2 = 210. The answer is 210.",
        ["The sum is 20 x 21 / 2 = 210. The answer is 210.",
         "1 + 2 + ... + 20 = 20 x 21 / 2 = 210. The answer is 210.",
         "Pairing 1 with 20, 2 with 19 and so on gives 10 pairs of 21, so 210. The answer is 210."],
    ),
    (
        "If 3x + 7 = 25, what is x?",
        "6",
        "Subtract 7 from both sides: 3x = 18, so x = 6. The answer is 6.",
        ["3x = 25 - 7 = 18, x = 18 / 3 = 6. The answer is 6.",
         "3x + 7 = 25 means 3x = 18, so x = 6. The answer is 6.",
         "3x = 25 + 7 = 32, so x = 32/3. The answer is 32/3."],
    ),
    (
        "A shirt costs $40 and is discounted by 15%. What is the sale price in dollars?",
        "34",
        "15% of 40 is 6, and 40 - 6 = 34. The answer is 34.",
        ["The discount is 0.15 x 40 = 6 dollars, so the price is 34. The answer is 34.",
         "40 x 0.15 = 4, so the sale price is 36 dollars. The answer is 36.",
         "40 x 0.85 = 34. The answer is 34."],
    ),
    (
        "How many ways can 5 different books be arranged on a shelf?",
        "120",
        "The number of orderings of 5 distinct books is 5! = 120. The answer is 120.",
        ["5! = 5 x 4 x 3 x 2 x 1 = 120. The answer is 120.",
         "There are 5 x 5 = 25 arrangements. The answer is 25.",
         "5 factorial is 120 arrangements. The answer is 120."],
    ),
    (
        "What is the greatest common divisor of 84 and 126?",
        "42",
        "84 = 2^2 x 3 x 7 and 126 = 2 x 3^2 x 7, so the gcd is 2 x 3 x 7 = 42. The answer is 42.",
        ["126 - 84 = 42 and 84 = 2 x 42, so the gcd is 42. The answer is 42.",
         "Both are divisible by 21, so the gcd is 21. The answer is 21.",
         "The largest number dividing both evenly is 21. The answer is 21."],
    ),
    (
        "A rectangle has a perimeter of 36 cm and a length of 11 cm. What is its area in square cm?",
        "77",
        "The width is 36 / 2 - 11 = 7, so the area is 11 x 7 = 77. The answer is 77.",
        ["Width = (36 - 22) / 2 = 7; area = 77. The answer is 77.",
         "Width = 36 - 11 = 25, area = 275. The answer is 275.",
         "Width = 18 - 11 = 7 cm; area = 11 x 7 = 77. The answer is 77."],
    ),
    (
        "What is the probability of rolling a sum of 7 with two fair six-sided dice? Give a fraction.",
        "1/6",
        "Six of the 36 outcomes sum to 7: (1,6), (2,5), (3,4), (4,3), (5,2), (6,1). "
        "6/36 = 1/6. The answer is 1/6.",
        ["There are 6 favourable outcomes out of 36, so 1/6. The answer is 1/6.",
         "Three pairs sum to 7 out of 36 outcomes, so 1/12. The answer is 1/12.",
         "Outcomes summing to 7: 3 of 36, so 1/12. The answer is 1/12."],
    ),
]


def build_records() -> list[Record]:
    counter = counter_for("gpt-4o")
    records = []
    for i, (question, ref, strong, weak) in enumerate(QUESTIONS):
        prompt_tokens = counter.count_messages([{"role": "user", "content": question}])
        models = {}
        for name, texts in (("gpt-4o", [strong]), ("gpt-4o-mini", weak)):
            models[name] = ModelSamples(
                responses=texts,
                scores={"correct": [float(answers_match(extract_answer(t), ref)) for t in texts]},
                token_num_prompt=prompt_tokens,
                token_num_responses=[counter.count_text(t) for t in texts],
            )
        records.append(Record(id=f"example-{i}", prompt=question, source="litellm-example",
                              models=models, meta={"answer": ref}))
    return records


def main() -> None:
    records = build_records()
    write_records(records, HERE / "records.jsonl")
    fleet = Fleet.from_yaml(HERE / "fleet.yaml")
    router = PriorRouter.fit(records, fleet.candidate_keys, quality_score="correct",
                             selector=fleet.selector)
    router.save_pretrained(HERE / "router")
    print(f"wrote {len(records)} records and a prior router over {fleet.candidate_keys}: "
          f"{dict(zip(router.candidate_keys, [round(p, 3) for p in router.priors], strict=True))}")


if __name__ == "__main__":
    main()
