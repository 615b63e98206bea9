"""Normalise final answers and decide whether a prediction matches a reference.

Normalisation and matching live together because matching is defined on normal forms:
:func:`normalise_answer` maps numbers, fractions and constant expressions to one form, yes/no
style answers to ``"yes"`` / ``"no"`` and other text to lower-case words; :func:`answers_match`
compares normal forms, then expressions in variables by evaluation at probe points, then lists
of values; :func:`grade` runs extraction and matching on a whole response.
"""

from __future__ import annotations

import functools
import math
import re
from fractions import Fraction

from adaptive_router.grading.expression import ExpressionError, _clean_math, parse_expression
from adaptive_router.grading.extract import _NUMBER, _last_sentence, extract_answer

__all__ = ["normalise_answer", "answers_match", "grade"]

# ---------------------------------------------------------------------------------------------
# normalisation
# ---------------------------------------------------------------------------------------------

_YES = re.compile(r"^(?:yes|true|correct|it is possible|possible)\b", re.IGNORECASE)
_NO = re.compile(
    r"^(?:no\b|none\b|false\b|not\b|never\b|impossible\b|there (?:is|are|exist|exists) no\b|"
    r"no such\b|does not\b|do not\b|doesn't\b|don't\b|cannot\b|can't\b|is not\b|it is not\b|"
    r"such an? \w+ (?:is|are) not\b|the \w+ does not\b|zero\b)",
    re.IGNORECASE,
)


def _format_number(x: float) -> str:
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if abs(x - round(x)) < 1e-9 * max(1.0, abs(x)):
        return str(int(round(x)))
    frac = Fraction(x).limit_denominator(10_000)
    if abs(float(frac) - x) < 1e-12 * max(1.0, abs(x)):
        return f"{frac.numerator}/{frac.denominator}"
    return f"{x:.6g}"


def _polarity(text: str) -> str | None:
    t = text.strip().lower()
    if _NO.match(t):
        return "no"
    if _YES.match(t):
        return "yes"
    return None


@functools.lru_cache(maxsize=65536)
def normalise_answer(ans: str | None) -> str | None:
    """A canonical form of an answer, so that equal answers compare equal as strings.

    Numbers (with units, commas, ``$``, ``%``) become an integer, a reduced fraction ``p/q``
    or 6 significant digits; constant expressions are evaluated (``\\frac{1}{2}`` -> ``1/2``,
    ``C(10,5)`` -> ``252``); expressions in variables become a compact string (``2^(n - 1)`` ->
    ``2^(n-1)``); yes/no/none-style answers become ``yes`` or ``no``; other text becomes
    lower-case words. None and empty stay None.
    """
    if ans is None:
        return None
    text = ans.strip()
    if not text:
        return None
    pol = _polarity(_clean_math(text))
    if pol:
        return pol
    try:
        fn, variables = parse_expression(text)
        if not variables:
            return _format_number(float(fn({})))
        return re.sub(r"\s+", "", _clean_math(text)).replace("**", "^")
    except (ExpressionError, ArithmeticError, ValueError, TypeError, OverflowError):
        pass
    lead = _NUMBER.match(_clean_math(text))
    if lead and re.fullmatch(r"[\d,./-]+\s+[a-zA-Z][^\d]*", _clean_math(text)):
        # "18 dollars", "29 valid strings": the leading number is the answer
        return normalise_answer(lead.group(0))
    words = re.sub(r"[^\w\s^/+*=-]", " ", text.lower())
    return re.sub(r"\s+", " ", words).strip() or None


# ---------------------------------------------------------------------------------------------
# matching
# ---------------------------------------------------------------------------------------------

_ALTERNATIVES = re.compile(r",?\s*or (?:equivalently|an equivalent form such as|approximately)\s*",
                           re.IGNORECASE)
_REFERENCE_PHRASES = [
    (re.compile(r"^the limit exists and is equal to\s*", re.I), ""),
    (re.compile(r"^the only possible value (?:for|of) the limit is\s*", re.I), ""),
    (re.compile(r"\s*is the only possible value$", re.I), ""),
    (re.compile(r"^(?:exactly|at least|at most)\s+", re.I), ""),
    (re.compile(r"(?<=[<>])(\S+)\s+for all\b.*$", re.I), r"\1"),
]


@functools.lru_cache(maxsize=65536)
def _reference_alternatives(ref: str) -> tuple[str, ...]:
    """The acceptable forms of a reference answer: ``"C(10, 5), or equivalently 252"`` gives
    both, and ``"100 (i.e., all values)"`` gives ``"100"`` and ``"all values"``."""
    out: list[str] = []
    for part in _ALTERNATIVES.split(ref):
        part = part.strip().rstrip(".")
        if not part:
            continue
        paren = re.search(r"\s*\((?:i\.e\.,?|no|none)\s*([^()]*)\)\s*$", part, re.I)
        if paren:
            out.append(part[: paren.start()].strip())
            inner = paren.group(0).strip(" ()")
            out.append(re.sub(r"^i\.e\.,?\s*", "", inner, flags=re.I))
        else:
            out.append(part)
    for alt in list(out):  # "0 roots", "0 pairs": a count of zero is also answered by "none"
        if re.match(r"^0\s+(?:[a-z-]+\s+)?(?:roots?|pairs?|values?|solutions?|zeros?|numbers?|terms?)\b", alt, re.I):
            out.append("none")
    cleaned = []
    for alt in out:
        for pattern, repl in _REFERENCE_PHRASES:
            alt = pattern.sub(repl, alt)
        cleaned.append(alt.strip())
    return tuple(a for a in cleaned if a)


_PROBE_POINTS = (3.0, 5.0, 7.0, 4.0, 6.0, 11.0)


def _expressions_equal(a: str, b: str) -> bool | None:
    """True/False when both parse as expressions (compared at probe points); None otherwise.

    Two different polynomials or closed forms in the same variables agree at a handful of
    distinct integer points only by accident (the Schwartz-Zippel argument), so probing at a
    few small integers decides equivalence for the answers we meet, with factorials and
    binomials included.
    """
    try:
        fa, va = parse_expression(a)
        fb, vb = parse_expression(b)
    except (ExpressionError, ArithmeticError, ValueError, TypeError, OverflowError):
        return None
    if va != vb:
        return False
    names = sorted(va)
    points = [{v: _PROBE_POINTS[(i + j) % len(_PROBE_POINTS)] + j for j, v in enumerate(names)}
              for i in range(4 if names else 1)]
    compared = 0
    for point in points:
        try:
            x, y = float(fa(point)), float(fb(point))
        except (ArithmeticError, ValueError, TypeError, OverflowError):
            continue
        if math.isnan(x) or math.isnan(y):
            continue
        compared += 1
        if not math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9):
            return False
    return compared > 0


def _values(s: str) -> list[str] | None:
    """The values listed in ``"1 and 19"``, ``"x=6, y=5"``, ``"(0, 0)"``, ``"x=y=0"`` (normalised,
    sorted); None unless there are at least two."""
    s = _clean_math(s) if "\\" in s else s
    chained = re.fullmatch(r"\s*((?:[a-z]\s*=\s*){2,})(.+)", s)
    if chained:  # x=y=0: every variable takes the value
        value = normalise_answer(chained.group(2))
        return None if value is None else [value] * chained.group(1).count("=")
    s = re.sub(r"[()\[\]{}]", " ", s)
    parts = [p.strip() for p in re.split(r",|\band\b|;", s) if p.strip()]
    if len(parts) < 2:
        return None
    out = []
    for p in parts:
        n = normalise_answer(p.split("=")[-1]) if "=" in p else normalise_answer(p)
        if n is None:
            return None
        out.append(n)
    return sorted(out)


def answers_match(pred: str | None, ref: str) -> bool:
    """Whether a predicted final answer equals the reference answer.

    ``pred`` is an answer as extracted (see :func:`extract_answer`); ``ref`` is the reference,
    possibly listing alternatives. Numbers compare with a relative tolerance of 1e-6;
    expressions in variables by evaluation at probe points; yes/no/none answers by polarity;
    lists of values as sorted lists; other text by normalised string equality.
    """
    if pred is None or not pred.strip():
        return False
    pred_norm = normalise_answer(pred)
    for alt in _reference_alternatives(ref):
        ref_norm = normalise_answer(alt)
        if ref_norm is None:
            continue
        if pred_norm == ref_norm:
            return True
        if ref_norm in ("yes", "no"):
            if pred_norm in ("yes", "no"):
                if pred_norm == ref_norm:
                    return True
                continue
            # a yes/no question answered by a statement: negated statements mean "no"
            negated = re.search(r"\b(?:not|no|never|cannot|isn't|aren't|doesn't)\b", pred, re.I)
            if ref_norm == ("no" if negated else "yes") and not re.search(r"\d", pred_norm or ""):
                return True
            continue
        eq = _expressions_equal(pred, alt)
        if eq:
            return True
        if eq is None:
            pv, rv = _values(pred), _values(alt)
            if pv is not None and rv is not None and pv == rv:
                return True
    return False


def _statement_polarity(text: str) -> str:
    """Yes or no, read off a final sentence that answers a yes/no question: a leading Yes/No
    wins; else a negation ("not", "no", "cannot", "never") means no; else yes."""
    sentence = _last_sentence(text) or text
    head = re.match(r"^\W*(yes|no)\b", sentence, re.IGNORECASE)
    if head:
        return head.group(1).lower()
    negated = re.search(r"\b(?:not|no|never|cannot|can't|isn't|aren't|doesn't|don't|impossible)\b",
                        sentence, re.IGNORECASE)
    return "no" if negated else "yes"


def grade(text: str | None, reference: str) -> bool:
    """Whether a response's final answer is the reference answer.

    For a yes/no reference the whole final sentence is read for its polarity (a statement such
    as "the sequence can be extended indefinitely" answers "yes"); otherwise the extracted final
    answer (:func:`extract_answer`) is matched (:func:`answers_match`).
    """
    if text is None or not text.strip():
        return False
    plain = re.match(r"^\s*(yes|no)\s*(?:[.,;]|$)", reference, re.IGNORECASE)
    if plain:  # a yes/no question ("No integer solutions" is not one: it is matched as an answer)
        return _statement_polarity(text) == plain.group(1).lower()
    return answers_match(extract_answer(text), reference)

