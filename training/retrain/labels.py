"""Quality labels in [0, 1] for served answers: user feedback, reward scores, an LLM judge.

Logged traffic holds no ground truth, so each served answer's quality comes from the best source
at hand (in ``auto`` order): what the user said, the reward score the best-of-n selector logged
for the chosen sample, or another model's judgement.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from adaptive_router.errors import ConfigError, DataError
from adaptive_router.routers.feedback_tuned import sigmoid
from adaptive_router.traffic import TrafficLogLine

LABEL_SOURCES = ("auto", "feedback", "reward", "judge")


def feedback_quality(feedback: Mapping[str, Any] | None) -> float | None:
    """Quality in [0, 1] from explicit feedback fields, or None.

    Understood: ``score`` / ``quality`` (already in [0, 1]), ``correct`` (bool), ``thumbs``
    (``"up"``/``"down"``) or ``thumbs_up`` (bool), ``rating`` (1-5 stars).
    """
    if not feedback:
        return None
    for key in ("score", "quality"):
        if feedback.get(key) is not None:
            v = float(feedback[key])
            if not 0.0 <= v <= 1.0:
                raise DataError(f"feedback {key} must be within [0, 1], got {v}")
            return v
    if feedback.get("correct") is not None:
        return float(bool(feedback["correct"]))
    if feedback.get("thumbs_up") is not None:
        return float(bool(feedback["thumbs_up"]))
    thumbs = feedback.get("thumbs")
    if isinstance(thumbs, str) and thumbs.lower() in ("up", "down"):
        return 1.0 if thumbs.lower() == "up" else 0.0
    if feedback.get("rating") is not None:
        r = float(feedback["rating"])
        if not 1.0 <= r <= 5.0:
            raise DataError(f"feedback rating must be 1-5 stars, got {r}")
        return (r - 1.0) / 4.0
    return None


def reward_quality(line: TrafficLogLine, temperature: float = 1.0) -> float | None:
    """Quality in [0, 1] from the reward score logged for the served sample: the logistic of
    the score. A Bradley-Terry reward model's score difference is a log-odds of preference, so
    ``sigmoid(score)`` is the probability of beating a response scored 0. Lines whose scores
    came from another selector (majority-vote counts) carry no reward score."""
    selector = (line.model_extra or {}).get("selector", "reward")
    if selector != "reward":
        return None
    if line.chosen_index < len(line.reward_scores):
        s = float(line.reward_scores[line.chosen_index])
        if math.isfinite(s):
            return float(sigmoid(np.array(s / temperature)))
    return None


JUDGE_PROMPT = """You are grading an AI assistant's answer. Rate how correct and helpful the \
answer is on a scale from 1 (wrong or useless) to 10 (fully correct and helpful).

Question:
{prompt}

Answer:
{answer}

Reply with the number only."""


@dataclass
class JudgeLabeler:
    """An LLM judge called through ``litellm.completion``: any model LiteLLM reaches (a hosted
    model, a proxy via ``api_base``, or an in-process ``local/`` model registered in
    ``litellm.custom_provider_map``). The first integer 1-10 in its reply becomes
    ``(score - 1) / 9``; a reply without one leaves the request unlabelled."""

    model: str
    api_base: str | None = None
    api_key: str | None = None
    max_tokens: int = 8
    max_chars: int = 4000
    template: str = JUDGE_PROMPT
    calls: int = 0
    unparsed: int = 0

    def messages(self, prompt: str, answer: str) -> list[dict[str, str]]:
        text = self.template.format(prompt=prompt[: self.max_chars], answer=answer[: self.max_chars])
        return [{"role": "user", "content": text}]

    @staticmethod
    def parse(reply: str) -> float | None:
        m = re.search(r"\b(10|[1-9])\b", reply or "")
        return None if m is None else (int(m.group(1)) - 1) / 9.0

    def __call__(self, prompt: str, answer: str) -> float | None:
        import litellm

        kwargs: dict[str, Any] = {"model": self.model, "messages": self.messages(prompt, answer),
                                  "max_tokens": self.max_tokens, "temperature": 0.0}
        if self.api_base:
            kwargs["api_base"] = self.api_base
        if self.api_key:
            kwargs["api_key"] = self.api_key
        resp = litellm.completion(**kwargs)
        self.calls += 1
        score = self.parse(resp.choices[0].message.content or "")
        if score is None:
            self.unparsed += 1
        return score


def line_label(line: TrafficLogLine, source: str = "auto", has_judge: bool = False,
               reward_temperature: float = 1.0) -> tuple[float | None, str | None, bool]:
    """One line's quality label and its source, without calling the judge: ``(value, source,
    needs_judge)``. Per line, so that a streamed log is labelled as it is read."""
    if line.error or not line.samples:
        return None, None, False
    value, src = None, None
    if source in ("auto", "feedback"):
        value, src = feedback_quality(line.feedback), "feedback"
    if value is None and source in ("auto", "reward"):
        value, src = reward_quality(line, reward_temperature), "reward"
    if value is None and has_judge and source in ("auto", "judge"):
        return None, None, True
    return (value, src, False) if value is not None else (None, None, False)


def check_label_source(source: str, judge: Callable[[str, str], float | None] | None) -> None:
    """Fail before reading a log when the label source cannot work."""
    if source not in LABEL_SOURCES:
        raise ConfigError(f"unknown label source {source!r}; use one of {LABEL_SOURCES}")
    if source == "judge" and judge is None:
        raise ConfigError("--label-source judge needs a judge model: pass --judge-model MODEL "
                          "(any model litellm.completion can call)")


def judge_answers(items: Sequence[tuple[str, str]], judge: Callable[[str, str], float | None],
                  progress: bool = True) -> list[float | None]:
    """The judge's label of each (prompt, served answer)."""
    from tqdm.auto import tqdm

    return [judge(prompt, answer) for prompt, answer in
            tqdm(items, desc="judging answers", unit="answer", disable=not progress)]


def served_answer(line: TrafficLogLine) -> str:
    """The answer the client received (the chosen sample)."""
    return line.samples[min(line.chosen_index, len(line.samples) - 1)]


def label_quality(
    lines: Sequence[TrafficLogLine],
    source: str = "auto",
    judge: Callable[[str, str], float | None] | None = None,
    reward_temperature: float = 1.0,
    progress: bool = True,
) -> tuple[np.ndarray, list[str | None]]:
    """A quality label in [0, 1] for each line's served answer (NaN when none) and its source.

    ``auto`` takes feedback when a line has it, else the logged reward score, else the judge
    (when one is given).
    """
    check_label_source(source, judge)
    labels = np.full(len(lines), np.nan)
    sources: list[str | None] = [None] * len(lines)
    needs_judge = []
    for i, line in enumerate(lines):
        value, src, ask = line_label(line, source, judge is not None, reward_temperature)
        if ask:
            needs_judge.append(i)
        elif value is not None:
            labels[i], sources[i] = value, src
    if needs_judge:
        items = [(lines[i].prompt, served_answer(lines[i])) for i in needs_judge]
        for i, value in zip(needs_judge, judge_answers(items, judge, progress), strict=True):  # type: ignore[arg-type]
            if value is not None:
                labels[i], sources[i] = value, "judge"
    return labels, sources
