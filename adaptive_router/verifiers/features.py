"""Features of one cascade step's answer, for the trained verifier.

Cheap to compute at serving time (no model is loaded): the answer's shape (length, whether it has
a final answer, whether that answer is a whole number), signs of trouble inside it (arithmetic
statements that do not hold, quantities of the prompt it never uses, hedging), the agreement of
the other samples and of earlier models, and the router's prior. Each was chosen because it tells
a wrong answer from a right one on held-out math and multiple-choice answers; the trained
verifier's report lists every feature's weight.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

from adaptive_router.verifiers.agreement import agreement_share, final_answer
from adaptive_router.verifiers.base import Evidence

_NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?")
#: "a op b [op c ...] = r": an arithmetic statement whose value can be checked.
_STATEMENT = re.compile(r"(-?\d[\d,]*(?:\.\d+)?(?:\s*[-+*/x×÷]\s*-?\d[\d,]*(?:\.\d+)?)+)\s*=\s*\$?\s*(-?\d[\d,]*(?:\.\d+)?)")
#: Phrases with which a model admits trouble or bends the question.
HEDGES = ("however", "assum", "approximately", "round", "cannot", "can't", "not possible",
          "doesn't make sense", "not enough information", "whole number", "unclear", "not sure",
          "i apologize", "it seems", "mistake", "let's re", "actually")

FEATURE_NAMES: tuple[str, ...] = (
    "answer_chars_log", "prompt_chars_log", "lines_log", "no_final_answer", "numeric_answer",
    "whole_number_answer", "negative_answer", "answer_magnitude_log", "statements_log",
    "false_statements", "any_false_statement", "unused_prompt_numbers", "hedges",
    "samples_log", "agreement", "has_agreement", "earlier_agreement", "has_earlier",
    "prior", "has_prior", "final_is_last_result", "final_in_working", "marked_final",
)
#: How a solution marks its final answer ("#### 42", "the answer is", \\boxed{}).
_MARKED = re.compile(r"####|answer is|\\boxed\{", re.IGNORECASE)


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def _last_result(text: str) -> float | None:
    """The right-hand side of the text's last ``a op b = r`` statement."""
    found = _STATEMENT.findall(text)
    return _number(found[-1][1]) if found else None


def _arithmetic(text: str) -> tuple[int, int]:
    """(checked statements, false ones) among ``a op b = r`` statements of the text."""
    from adaptive_router.grading import ExpressionError, parse_expression

    checked = false = 0
    for lhs, rhs in _STATEMENT.findall(text):
        expected = _number(rhs)
        if expected is None:
            continue
        try:
            expr, names = parse_expression(lhs.replace(",", "").replace("x", "*").replace("×", "*")
                                           .replace("÷", "/"))
            if names:
                continue
            value = float(expr({}))
        except (ExpressionError, ArithmeticError, ValueError, TypeError, KeyError):
            continue
        checked += 1
        tolerance = max(0.011, 1e-6 * abs(expected))
        if abs(value - expected) > tolerance and abs(round(value) - expected) > tolerance:
            false += 1
    return checked, false


def _numbers(text: str) -> set[float]:
    return {v for v in (_number(x) for x in _NUMBER.findall(text)) if v is not None}


def step_features(ev: Evidence) -> list[float]:
    """The feature vector of one step, in :data:`FEATURE_NAMES` order."""
    answer, prompt = ev.answer, ev.prompt
    final = final_answer(answer)
    value = _number(final) if final is not None else None
    checked, false = _arithmetic(answer)
    given = _numbers(prompt)
    used = _numbers(answer)
    unused = sum(1 for x in given if x not in used) / len(given) if given else 0.0
    lower = answer.lower()
    share, count = agreement_share(ev)
    last = _last_result(answer)
    cut = answer.rfind(final) if final else -1
    working = _numbers(answer[:cut]) if cut > 0 else set()
    earlier_share = 0.0
    if ev.earlier:
        earlier_share, _ = agreement_share(Evidence(prompt, (answer,), 0, ev.earlier))
    return [
        math.log1p(len(answer)) / 8, math.log1p(len(prompt)) / 8, math.log1p(answer.count("\n")) / 4,
        float(final is None), float(value is not None),
        float(value is not None and math.isfinite(value) and value == int(value)),
        float(value is not None and value < 0),
        math.log1p(abs(value)) / 10 if value is not None and math.isfinite(value) else 0.0,
        math.log1p(checked) / 3, min(false, 3) / 3, float(false > 0), unused,
        min(sum(lower.count(h) for h in HEDGES), 5) / 5,
        math.log(len(ev.samples)) / 3, 0.0 if count == 0 else share, float(count > 0),
        earlier_share, float(bool(ev.earlier)),
        ev.prior if ev.prior is not None else 0.5, float(ev.prior is not None),
        float(value is not None and last is not None and abs(value - last) < 1e-9),
        float(value is not None and value in working), float(bool(_MARKED.search(answer))),
    ]


def feature_matrix(evidence: Sequence[Evidence]) -> np.ndarray:
    """(len(evidence), len(FEATURE_NAMES)) features."""
    if not evidence:
        return np.zeros((0, len(FEATURE_NAMES)))
    return np.array([step_features(ev) for ev in evidence], dtype=np.float64)
