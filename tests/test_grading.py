"""Final-answer extraction, normalisation and matching (adaptive_router.grading)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adaptive_router.grading import (
    ExpressionError,
    answers_match,
    extract_answer,
    grade,
    normalise_answer,
    parse_expression,
)

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("We get $x = 3$, so the answer is $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),
        ("She sells 9 eggs at $2 each: 9 * 2 = $18.\n#### 18", "18"),
        ("Adding up, the final answer is 42.", "42"),
        ("The answer: 7", "7"),
        ("There are 29 valid strings of length 6 that differ by less than or equal to 1.", "29"),
        ("You can take an odd number of objects from n distinct objects in 2^(n-1) ways.", "2^(n-1)"),
        ("The number of ways to select an odd number of objects is 2^(n-1).", "2^(n-1)"),
        ("No, 4^545 + 545^4 is not a prime number.", "No"),
        ("The smallest value is \\(1/3\\), which occurs when \\(a = b = c\\).", "1/3"),
        ("The only integer solution is (x, y) = (0, 0).", "(0, 0)"),
        ("The number of ways to place n rooks is n factorial (n!).", "n!"),
        ("The expression factorizes to (x + y)(x - y).", "(x + y)(x - y)"),
        ("The count is given by the formula (n(n+1)/2)².", "(n(n+1)/2)^2"),
        ("The possible values are 0, 1 and 4.", "0, 1 and 4"),
        ("x(n) is less than y(n-1) for every n.", "x(n)<y(n-1)"),
        ("Working through it, I got 12 apples and then 15 more, 27 in total", "27"),
    ],
)
def test_extract_answer(text: str, expected: str) -> None:
    assert extract_answer(text) == expected


def test_extract_answer_nothing_to_find() -> None:
    assert extract_answer("") is None
    assert extract_answer(None) is None
    assert extract_answer("   ") is None


def test_extract_negative_existence() -> None:
    assert normalise_answer(extract_answer("The equation x^2 = 3y^2 + 17 has no integer solutions.")) == "no"
    assert normalise_answer(extract_answer("Such a sequence does not exist.")) == "no"


@pytest.mark.parametrize(
    ("answer", "canonical"),
    [
        ("0.5", "1/2"), ("1/2", "1/2"), ("\\frac{1}{2}", "1/2"), ("\\dfrac{2}{4}", "1/2"),
        ("$1,200", "1200"), ("18 dollars", "18"), ("50%", "50"), ("C(10, 5)", "252"),
        ("2^10", "1024"), ("sqrt(16)", "4"), ("5!", "120"), ("-3", "-3"), ("x = 5", "5"),
        ("2^(n - 1)", "2^(n-1)"), ("Yes", "yes"), ("No integer solutions", "no"),
        ("There is no such value", "no"), ("It is not possible", "no"),
        (None, None), ("", None),
    ],
)
def test_normalise_answer(answer: str | None, canonical: str | None) -> None:
    assert normalise_answer(answer) == canonical


@pytest.mark.parametrize(
    ("pred", "ref"),
    [
        ("252", "C(10, 5), or equivalently 252"),
        ("C(10,5)", "C(10, 5), or equivalently 252"),
        ("5/14", "5/14, or approximately 35.7%"),
        ("2^n/2", "2^(n-1)"),
        ("n(n+1)(2n+1)/6", "sum_(i=1)^n i^2, or equivalently n(n+1)(2n+1)/6"),
        ("(n^2+n)^2/4", "sum_(i=1)^n i^3, or equivalently (n(n+1)/2)^2"),
        ("n!/(2n)", "n!/(2n)"),
        ("1 and 19", "1 and 19"),
        ("19 and 1", "1 and 19"),
        ("x=6 and y=5", "x=6, y=5"),
        ("(0, 0)", "x=y=0"),
        ("2", "The limit exists and is equal to 2"),
        ("0", "0 is the only possible value"),
        ("100", "100 (i.e., all values)"),
        ("no real roots", "0 roots"),
        ("0.3333333333", "1/3"),
        ("sqrt(3)/3", "sqrt(3)/3, or equivalently 1/sqrt(3)"),
        ("1/sqrt(3)", "sqrt(3)/3"),
    ],
)
def test_answers_match(pred: str, ref: str) -> None:
    assert answers_match(pred, ref)


@pytest.mark.parametrize(
    ("pred", "ref"),
    [
        ("251", "C(10, 5), or equivalently 252"),
        ("2^n", "2^(n-1)"),
        ("(n+1)(n+2)(2n+3)/6", "n(n+1)(2n+1)/6"),
        ("0 and 1990", "0 is the only possible value"),
        ("1", "1 and 19"),
        ("yes", "No"),
        ("0.33", "1/3"),
        (None, "3"),
        ("", "3"),
        ("n", "m"),
    ],
)
def test_answers_do_not_match(pred: str | None, ref: str) -> None:
    assert not answers_match(pred, ref)


def test_grade_reads_yes_no_statements() -> None:
    assert grade("The sequence can be extended indefinitely without a division by zero.", "Yes")
    assert grade("It is not possible to label the edges so.", "No")
    assert not grade("Yes, it is a prime number.", "No")
    assert grade("There are 144 ways to fill the rectangle.", "144")
    assert not grade("", "144")


def test_expression_parser_is_safe_and_strict() -> None:
    fn, variables = parse_expression("2n + 3(n-1)^2")
    assert variables == {"n"} and fn({"n": 2.0}) == 7.0
    for bad in ("__import__('os').system('true')", "open('x')", "lambda: 1", "a.b"):
        with pytest.raises(ExpressionError):
            parse_expression(bad)
    assert normalise_answer("__import__('os')") is not None  # text, never evaluated


def _agreement(name: str) -> tuple[int, int]:
    champ_dataset = pytest.importorskip("champ_dataset")
    from adaptive_router.training.loaders.champ import _turns, grade_champ

    ds = champ_dataset.load("v0")
    rows = [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]
    agree = 0
    for r in rows:
        problem = ds.problems[r["problem"]]
        solution, final = _turns(problem.conversations[f"{r['model']}|{r['setting']}"])
        agree += int(grade_champ(solution, final, problem.answer)) == r["correct"]
    return agree, len(rows)


def test_agreement_with_hand_checked_champ_sample() -> None:
    """The README's agreement rate: 60 CHAMP responses labelled by hand before the grader was
    run on them, never used for tuning the extractor (the dev samples were)."""
    agree, total = _agreement("champ_hand_checked_test.jsonl")
    assert total == 60
    assert agree / total >= 0.93, f"agreement {agree}/{total}"
    dev_agree, dev_total = _agreement("champ_hand_checked_dev.jsonl")
    assert dev_agree / dev_total >= 0.95
