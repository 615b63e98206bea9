"""Replay Records, a fleet and a prior router for the cascade tests (texts written for the tests).

The weak model's three recorded samples of ``DISAGREE`` give three different answers (agreement
0: the cascade escalates to the strong model); those of ``AGREE`` all say 12 (agreement 1:
accepted at step 1). ``NO_STRONG`` has weak samples that disagree but no strong recording, so
escalating to the strong model fails (the replay provider answers 400). The ``judge`` model's
recorded replies to the judge prompt about each answer: "yes" for the AGREE weak answers and
every strong answer, "no" for the other weak ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import litellm
import yaml

from adaptive_router.records import ModelSamples, Record, write_records
from adaptive_router.routers.prior import PriorRouter
from adaptive_router.verifiers.judge import JUDGE_PROMPT

DISAGREE = "A train covers 150 km in 2.5 hours. What is its average speed in km/h?"
AGREE = "What is 3 times 4?"
NO_STRONG = "How many legs do 7 spiders have in total?"

#: prompt -> (prompt tokens, weak samples [(text, output tokens)], strong sample or None)
RECORDED = {
    DISAGREE: (21, [("150 / 2.5 = 60. The answer is 60.", 15), ("It is 150 x 2.5 = 375. The answer is 375.", 17),
                    ("Speed is 150 / 2 = 75. The answer is 75.", 16)],
               ("150 km / 2.5 h = 60 km/h. The answer is 60.", 19)),
    AGREE: (9, [("3 x 4 = 12. The answer is 12.", 12), ("Three fours are 12. The answer is 12.", 11),
                ("The answer is 12.", 6)], ("3 times 4 is 12. The answer is 12.", 13)),
    NO_STRONG: (12, [("Each spider has 8 legs, 56 in all. The answer is 56.", 18),
                     ("7 x 6 = 42. The answer is 42.", 12), ("The answer is 49.", 6)], None),
}
PRICES = {"weak": (1.0e-07, 4.0e-07), "strong": (2.5e-06, 1.0e-05)}
PRIORS = {"weak#3": 0.6, "strong#1": 0.9}
JUDGE_TOKENS = (40, 1)


def judge_prompt(prompt: str, answer: str) -> str:
    return JUDGE_PROMPT.format(prompt=prompt, answer=answer)


def records() -> list[Record]:
    out = []
    for i, (prompt, (ptok, weak, strong)) in enumerate(RECORDED.items()):
        models = {"weak": ModelSamples(responses=[t for t, _ in weak], token_num_prompt=ptok,
                                       token_num_responses=[k for _, k in weak])}
        if strong is not None:
            models["strong"] = ModelSamples(responses=[strong[0]], token_num_prompt=ptok,
                                            token_num_responses=[strong[1]])
        out.append(Record(id=f"c{i}", prompt=prompt, source="tests", models=models))
    # the judge's recorded verdicts on every answer (3 votes each): weak answers are believed
    # for AGREE only, strong answers always
    for i, (prompt, (_, weak, strong)) in enumerate(RECORDED.items()):
        verdicts = [("yes" if prompt == AGREE else "no", text) for text, _ in weak]
        if strong is not None:
            verdicts.append(("yes", strong[0]))
        for j, (verdict, text) in enumerate(verdicts):
            out.append(Record(id=f"j{i}-{j}", prompt=judge_prompt(prompt, text), source="tests", models={
                "judge": ModelSamples(responses=[verdict] * 3, token_num_prompt=JUDGE_TOKENS[0],
                                      token_num_responses=[JUDGE_TOKENS[1]] * 3)}))
    return out


def deployments() -> list[dict]:
    from adaptive_router.integrations.litellm_plugin.proxy_process import replay_deployment

    return [replay_deployment("weak-replay", "weak", *PRICES["weak"]),
            replay_deployment("strong-replay", "strong", *PRICES["strong"]),
            replay_deployment("judge-replay", "judge", 0.0, 0.0)]


def write_fleet(folder: Path) -> Path:
    fleet = folder / "fleet.yaml"
    fleet.write_text(yaml.safe_dump({
        "reference": "strong", "selector": "majority",
        "models": [{"name": "weak", "litellm_model": "weak-replay", "n": [3], "expected_output_tokens": 15},
                   {"name": "strong", "litellm_model": "strong-replay", "n": [1],
                    "expected_output_tokens": 15}]}), encoding="utf-8")
    return fleet


def write_all(folder: Path) -> dict[str, Path]:
    """Records, fleet and prior router in ``folder``."""
    rec = folder / "records.jsonl"
    write_records(records(), rec)
    router = folder / "router"
    PriorRouter(list(PRIORS), PRIORS).save_pretrained(router)
    return {"records": rec, "fleet": write_fleet(folder), "router": router}


def cost(model: str, prompt_tokens: int, output_tokens: list[int]) -> float:
    inp, out = PRICES[model]
    return prompt_tokens * inp + sum(output_tokens) * out


def weak_cost(prompt: str) -> float:
    ptok, weak, _ = RECORDED[prompt]
    return cost("weak", ptok, [k for _, k in weak])


def strong_cost(prompt: str) -> float:
    ptok, _, strong = RECORDED[prompt]
    return cost("strong", ptok, [strong[1]])


@contextmanager
def replay_providers(records: Path, monkeypatch) -> Iterator[None]:
    """The project's replay/local providers registered in-process over ``records`` (restored after)."""
    from adaptive_router.integrations.litellm_plugin.providers import provider_map

    monkeypatch.setenv("ADAPTIVE_ROUTER_REPLAY_RECORDS", str(records))
    saved = list(litellm.custom_provider_map)
    litellm.custom_provider_map = provider_map()
    litellm.utils.custom_llm_setup()
    try:
        yield
    finally:
        litellm.custom_provider_map = saved
