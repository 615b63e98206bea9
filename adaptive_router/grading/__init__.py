"""Grade free-text answers: extract the final answer, normalise it, and match it to a reference.

Used to grade responses against a reference (the CHAMP loader derives correctness this way) and
by the ``majority`` best-of-n selector (self-consistency votes over normalised answers).

Three steps, each usable alone, one module each:

- :func:`extract_answer` (:mod:`.extract`) finds the final answer of a free-text solution: a
  ``\\boxed{...}``, a GSM8K ``#### 42`` line, "the answer is ...", else the phrase after the last
  "is / are / = / equals" of the final sentence, else the last number.
- :func:`normalise_answer` (:mod:`.match`) maps an answer to a canonical string: numbers and
  fractions to one form (``"0.5"``, ``"1/2"`` and ``"\\frac{1}{2}"`` all become ``"1/2"``),
  expressions to a compact form, yes/no-style answers to ``"yes"`` / ``"no"``, other text to
  lower-case words.
- :func:`answers_match` (:mod:`.match`) compares a predicted answer with a reference:
  numerically for numbers, by evaluating both sides at several points for expressions in
  variables (``2^(n-1)`` matches ``2^n/2``), by polarity for yes/no/none answers, and by the set
  of values for lists (``"1 and 19"``). A reference may list alternatives (``"C(10, 5), or
  equivalently 252"``).

Expressions are parsed by a small recursive-descent parser (:mod:`.expression`), never by
``eval`` or sympy's ``parse_expr`` (which evaluates Python): model outputs are untrusted text.
"""

from __future__ import annotations

from adaptive_router.grading.expression import ExpressionError, parse_expression
from adaptive_router.grading.extract import extract_answer
from adaptive_router.grading.match import answers_match, grade, normalise_answer

__all__ = ["extract_answer", "normalise_answer", "answers_match", "grade", "parse_expression",
           "ExpressionError"]
