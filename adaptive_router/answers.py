"""Final answers: extract them from a solution, normalise them, and decide whether two match.

Used to grade responses against a reference (the CHAMP loader derives correctness this way) and
by the ``majority`` best-of-n selector (self-consistency votes over normalised answers).

Three steps, each usable alone:

- :func:`extract_answer` finds the final answer of a free-text solution: a ``\\boxed{...}``, a
  GSM8K ``#### 42`` line, "the answer is ...", else the phrase after the last "is / are / = /
  equals" of the final sentence, else the last number.
- :func:`normalise_answer` maps an answer to a canonical string: numbers and fractions to one
  form (``"0.5"``, ``"1/2"`` and ``"\\frac{1}{2}"`` all become ``"1/2"``), expressions to a compact
  form, yes/no-style answers to ``"yes"`` / ``"no"``, other text to lower-case words.
- :func:`answers_match` compares a predicted answer with a reference: numerically for numbers,
  by evaluating both sides at several points for expressions in variables (``2^(n-1)`` matches
  ``2^n/2``), by polarity for yes/no/none answers, and by the set of values for lists
  (``"1 and 19"``). A reference may list alternatives (``"C(10, 5), or equivalently 252"``).

Expressions are parsed by a small recursive-descent parser of this module, never by ``eval``
or sympy's ``parse_expr`` (which evaluates Python): model outputs are untrusted text.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from fractions import Fraction

__all__ = ["extract_answer", "normalise_answer", "answers_match", "grade", "parse_expression",
           "ExpressionError"]

# ---------------------------------------------------------------------------------------------
# extraction
# ---------------------------------------------------------------------------------------------

_ANSWER_IS = re.compile(
    r"(?:final answer|the answer|answer)\s*(?:is|:|=)\s*:?\s*(.+?)(?:\.\s|\.?\s*$|\n)",
    re.IGNORECASE,
)
_HASHES = re.compile(r"####\s*([^\n]+)")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?|-?\.\d+")
# the verbs after which a summary sentence states its answer
_CUE = re.compile(r"\s(?:is|are|was|were|equals|equal to|be|gives|yields|=|≈|:|to|by|as)\s+", re.IGNORECASE)
_SUPERSCRIPTS = str.maketrans({"²": "^2", "³": "^3", "⁴": "^4", "⁵": "^5", "ⁿ": "^n", "−": "-", "–": "-"})
#: "x(n) is less than y(n-1)" -> "x(n)<y(n-1)"
_COMPARISON = re.compile(r"(\S+)\s+(?:is|are)\s+(?:always\s+)?(less|smaller|greater|larger|bigger)\s+than\s+(\S+)",
                         re.IGNORECASE)


def _boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` / ``\\fbox{...}`` (braces balanced)."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0:
        return None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j].strip()
    return None


def _last_sentence(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    last = lines[-1]
    # split on sentence ends that are not decimal points ("3.5") nor initials
    parts = [p for p in re.split(r"(?<=[.!?])\s+(?=[A-Z])", last) if p.strip()]
    return parts[-1] if parts else last


def extract_answer(text: str | None) -> str | None:
    """The final answer stated in a solution, as written (not normalised); None if none.

    Looks, in order, for: the last ``\\boxed{...}``; a ``#### answer`` line (GSM8K); "the
    (final) answer is ..."; in the last sentence, the phrase after the last "is / are / = /
    equals / equal to" that starts with a number, an expression or a yes/no/none word; a
    sentence that starts with Yes/No; else the last number of the text.
    """
    if not text or not text.strip():
        return None
    boxed = _boxed(text)
    if boxed:
        return boxed
    hashes = _HASHES.findall(text)
    if hashes:
        return hashes[-1].strip()
    found = _ANSWER_IS.findall(text)
    if found:
        return found[-1].strip().strip("$").strip()
    last = _last_sentence(text)
    sentence = _simplify_sentence(last)
    head = re.match(r"^\W*(yes|no)\b", sentence, re.IGNORECASE)
    if head:
        return head.group(1)
    negative = _NEGATIVE_EXISTENCE.search(last)
    if negative:  # "has no integer solutions" -> "no integer solutions"
        return re.sub(r"^(?:has|have|there is|there are|with|is|are)\s+", "", negative.group(0), flags=re.I)
    compared = _COMPARISON.search(sentence)
    if compared:
        a, word, b = compared.groups()
        return f"{a}{'<' if word.lower() in ('less', 'smaller') else '>'}{b.rstrip('.,;')}"
    there = re.match(r"^\W*(?:so,?\s*|thus,?\s*|therefore,?\s*)?there (?:are|is|exist|exists)\s+(.*)",
                     sentence, re.IGNORECASE)
    if there and (phrase := _leading_answer(there.group(1))):
        return phrase
    counted = re.search(r"\b(?:in|for)\s+(\S+(?:\s*[-+*/^]\s*\S+)*)\s+(?:\w+\s+)?(?:ways|values?)\b", sentence)
    if counted and (phrase := _leading_answer(counted.group(1))):
        return phrase
    for m in reversed(list(_CUE.finditer(" " + sentence))):
        tail = (" " + sentence)[m.end():].strip()
        phrase = _leading_answer(tail)
        if phrase:
            return phrase
    numbers = _NUMBER.findall(text)
    if numbers:
        return numbers[-1]
    return sentence.rstrip(".") or None


#: "has no integer solutions", "there is no such value", "does not exist", "is not possible"
_NEGATIVE_EXISTENCE = re.compile(
    r"\b(?:(?:has|have|there (?:is|are)|with) no\s+(?:[\w-]+\s+){0,3}?"
    r"(?:solutions?|roots?|zeros?|values?|such \w+|pairs?|numbers?|integers?|sequences?|terms?)\b"
    r"|(?:cannot|can't|does not|do not) have any\s+(?:[\w-]+\s+){0,3}?"
    r"(?:solutions?|roots?|zeros?|values?|pairs?|numbers?|integers?|sequences?|terms?)\b"
    r"|does not exist|do not exist|is not possible|are not possible|is impossible|cannot exist"
    r"|cannot be solved)",
    re.IGNORECASE,
)


def _simplify_sentence(sentence: str) -> str:
    """Drop inline-math delimiters, spell-outs such as "n factorial", and a trailing clause
    ("..., which occurs when a = b") whose formulas are not the answer."""
    s = re.sub(r"\\[()\[\]]", "", sentence).translate(_SUPERSCRIPTS).replace("$", "")
    s = re.sub(r"\b([a-zA-Z0-9]+) factorial\b(?:\s*\(\1!\))?", r"\1!", s)
    s = re.split(r",?\s+(?:which|where|when|since|because|as long as|provided|given that)\s|,\s+given\s",
                 s, maxsplit=1)[0]
    return s.strip()


_TEXT_ANSWER = re.compile(
    r"^(?:not|no|none|yes|true|false|impossible|infinite|infinitely|there (?:is|are) no|"
    r"does not|do not|cannot|is not|monotonically|always|never|periodic|odd|even|prime|composite)\b",
    re.IGNORECASE,
)


_FUNCTION_WORDS = ("sqrt", "floor", "ceil", "log", "ln", "exp", "sin", "cos", "tan", "binom", "pi",
                   "infinity", "frac", "dfrac", "cdot", "times")


def _is_mathy(word: str) -> bool:
    """Whether a whitespace-separated word belongs to a formula (digits, operators, a single
    letter variable, a function name), as opposed to an English word."""
    if not word:
        return False
    if re.search(r"[\d=^*/+()\[\]{}\\√π∞±<>≤≥!-]", word):
        letters = re.findall(r"[A-Za-z]{3,}", word)
        return all(w.lower() in _FUNCTION_WORDS for w in letters)
    return len(word) == 1 and word.isalpha() and word.lower() not in ("a",) or \
        word.lower() in _FUNCTION_WORDS


def _balanced_prefix(text: str) -> str | None:
    """The parenthesised group(s) at the start of ``text``: "(0, 0)", "(1, 2) and (2, 1)"."""
    pos, end = 0, 0
    while pos < len(text) and text[pos] in "([":
        depth = 0
        for i in range(pos, len(text)):
            if text[i] in "([":
                depth += 1
            elif text[i] in ")]":
                depth -= 1
                if depth == 0:
                    end = i + 1
                    break
        else:
            break
        sep = re.match(r"\s*(?:,\s*and|,|and)\s*(?=[(\[])", text[end:])
        if not sep:
            break
        pos = end + sep.end()
    return text[:end] if end else None


def _leading_answer(tail: str) -> str | None:
    """The answer at the start of ``tail``: a math expression, or a yes/no/none phrase."""
    tail = tail.strip().strip("$").strip()
    tail = re.sub(r"^(?:always|exactly|precisely|simply|just|only|then|the formula|the expression)\s+", "",
                  tail, flags=re.IGNORECASE)
    if not tail:
        return None
    listed = re.match(r"^([^\s,]+(?:\s*,\s*(?:and\s+)?[^\s,]+|\s+and\s+[^\s,]+)+)", tail)
    if listed and all(_is_mathy(x.strip().rstrip(".;:")) for x in
                      re.split(r",\s*and\s+|,|\s+and\s+", listed.group(1)) if x.strip()):
        return listed.group(1).rstrip(".;: ")
    if tail[0] in "([":
        group = _balanced_prefix(tail)
        # a group followed by more formula ("(x+y)(x-y)", "(n/2)^2") is read word by word below
        if group and not re.match(r"[\w(^*/!]", tail[len(group):len(group) + 1]):
            return group
    if _TEXT_ANSWER.match(tail):
        return tail.rstrip(". ")
    # a math expression runs until the first word that is not part of it
    kept: list[str] = []
    words = tail.split()
    for i, word in enumerate(words):
        bare = word.rstrip(".,;:")
        mid_formula = bool(kept) and kept[-1][-1:] in "+-*/^(=" and re.fullmatch(r"[a-z]{1,3}\)*", bare)
        if _is_mathy(bare) or mid_formula:
            kept.append(word)
            if bare != word:  # a sentence or clause ends here
                break
        elif bare.lower() in ("and", "or") and kept and i + 1 < len(words) and _is_mathy(
                words[i + 1].rstrip(".,;:")):
            kept.append(word)
        else:
            break
    expr = " ".join(kept).strip().rstrip(".,;: ")
    if expr and re.search(r"[\d(!]|\\frac|sqrt|^[a-zA-Z]\s*[=^*/+-]|^[a-z]$|∞|infinity", expr):
        return expr
    return None


# ---------------------------------------------------------------------------------------------
# a small, safe expression parser
# ---------------------------------------------------------------------------------------------


class ExpressionError(ValueError):
    """The text is not an arithmetic expression this parser understands."""


Expr = Callable[[dict[str, float]], float]

_FUNCS: dict[str, Callable[..., float]] = {
    "sqrt": math.sqrt, "floor": math.floor, "ceil": math.ceil, "log": math.log, "ln": math.log,
    "exp": math.exp, "sin": math.sin, "cos": math.cos, "tan": math.tan, "abs": abs,
    "C": lambda n, k: _binomial(n, k), "binom": lambda n, k: _binomial(n, k),
    "choose": lambda n, k: _binomial(n, k),
}
_CONSTS = {"pi": math.pi, "π": math.pi, "inf": math.inf, "infinity": math.inf, "∞": math.inf}
_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*|\.\d+)|([A-Za-zπ∞]+)|(\*\*|[-+*/^()!,×·÷√]))")


def _binomial(n: float, k: float) -> float:
    if abs(n - round(n)) < 1e-9 and abs(k - round(k)) < 1e-9:
        ni, ki = round(n), round(k)
        return float(math.comb(ni, ki)) if 0 <= ki <= ni else 0.0
    return math.gamma(n + 1) / (math.gamma(k + 1) * math.gamma(n - k + 1))


def _factorial(x: float) -> float:
    if abs(x - round(x)) < 1e-9 and x >= 0:
        return float(math.factorial(round(x)))
    return math.gamma(x + 1)


class _Parser:
    """Recursive descent over: sums, products (explicit or implicit), powers, unary minus,
    factorials, function calls (sqrt, C(n, k), floor, log...), numbers, constants, variables."""

    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise ExpressionError(f"unexpected character {text[pos]!r} in {text!r}")
            num, name, op = m.groups()
            if num is not None:
                self.tokens.append(("num", num))
            elif name is not None:
                self._name_tokens(name)
            else:
                self.tokens.append(("op", {"**": "^", "×": "*", "·": "*", "÷": "/"}.get(op, op)))
            pos = m.end()
        self.i = 0
        self.variables: set[str] = set()

    def _name_tokens(self, name: str) -> None:
        if name in _FUNCS or name in _CONSTS or name.lower() in _CONSTS:
            self.tokens.append(("name", name if name in _FUNCS or name in _CONSTS else name.lower()))
            return
        if len(name) > 2:
            raise ExpressionError(f"word {name!r} is not part of an expression")
        for ch in name:  # "nk" is n*k
            self.tokens.append(("name", ch))

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise ExpressionError(f"expected {value or 'more input'}")
        self.i += 1
        return tok

    def parse(self) -> Expr:
        if not self.tokens:
            raise ExpressionError("empty expression")
        e = self.expr()
        if self.peek() is not None:
            raise ExpressionError(f"unexpected {self.peek()[1]!r}")
        return e

    def expr(self) -> Expr:
        left = self.term()
        while (tok := self.peek()) and tok[1] in "+-" and tok[0] == "op":
            self.take()
            right = self.term()
            left = (lambda a, b: lambda v: a(v) + b(v))(left, right) if tok[1] == "+" else \
                (lambda a, b: lambda v: a(v) - b(v))(left, right)
        return left

    def term(self) -> Expr:
        left = self.unary()
        while True:
            tok = self.peek()
            if tok and tok[0] == "op" and tok[1] in "*/":
                self.take()
                right = self.unary()
                left = (lambda a, b: lambda v: a(v) * b(v))(left, right) if tok[1] == "*" else \
                    (lambda a, b: lambda v: a(v) / b(v))(left, right)
            elif tok and (tok[0] in ("num", "name") or tok[1] in ("(", "√")):
                right = self.power()  # implicit multiplication: 2n, n(n+1), 2sqrt(3)
                left = (lambda a, b: lambda v: a(v) * b(v))(left, right)
            else:
                return left

    def unary(self) -> Expr:
        tok = self.peek()
        if tok and tok[0] == "op" and tok[1] in "+-":
            self.take()
            inner = self.unary()
            return inner if tok[1] == "+" else (lambda a: lambda v: -a(v))(inner)
        return self.power()

    def power(self) -> Expr:
        base = self.postfix()
        tok = self.peek()
        if tok and tok[1] == "^":
            self.take()
            exponent = self.unary()  # right-associative, 2^-1 allowed
            return (lambda a, b: lambda v: a(v) ** b(v))(base, exponent)
        return base

    def postfix(self) -> Expr:
        e = self.atom()
        while (tok := self.peek()) and tok[1] == "!":
            self.take()
            e = (lambda a: lambda v: _factorial(a(v)))(e)
        return e

    def atom(self) -> Expr:
        kind, val = self.take()
        if kind == "num":
            x = float(val)
            return lambda v: x
        if val == "(":
            e = self.expr()
            self.take(")")
            return e
        if val == "√":
            inner = self.postfix()
            return lambda v: math.sqrt(inner(v))
        if kind == "name":
            if val in _FUNCS and (nxt := self.peek()) and nxt[1] == "(":
                self.take("(")
                args = [self.expr()]
                while (t := self.peek()) and t[1] == ",":
                    self.take()
                    args.append(self.expr())
                self.take(")")
                fn = _FUNCS[val]
                return lambda v: fn(*(a(v) for a in args))
            if val in _FUNCS:
                inner = self.power()  # "sqrt 3", "log n"
                fn = _FUNCS[val]
                return lambda v: fn(inner(v))
            if val in _CONSTS:
                c = _CONSTS[val]
                return lambda v: c
            self.variables.add(val)
            return lambda v: v[val]
        raise ExpressionError(f"unexpected {val!r}")


def _latex_to_plain(s: str) -> str:
    """Rewrite the LaTeX that answers use (fractions, roots, products) in plain notation."""
    s = s.replace("\\left", "").replace("\\right", "").replace("\\!", "").replace("\\,", "")
    s = re.sub(r"\\(?:text|mathrm|mathbf|textbf)\{([^{}]*)\}", r"\1", s)
    for _ in range(3):  # nested fractions
        s = re.sub(r"\\[dt]?frac\{([^{}]*)\}\{([^{}]*)\}", r"((\1)/(\2))", s)
        s = re.sub(r"\\sqrt\{([^{}]*)\}", r"sqrt(\1)", s)
        s = re.sub(r"\\binom\{([^{}]*)\}\{([^{}]*)\}", r"C(\1,\2)", s)
    s = re.sub(r"\\[dt]?frac(\d)(\d)", r"(\1/\2)", s)
    s = s.replace("\\cdot", "*").replace("\\times", "*").replace("\\div", "/").replace("\\pi", "pi")
    s = s.replace("\\infty", "inf").replace("\\pm", "±").replace("\\%", "%")
    s = s.replace("{", "(").replace("}", ")").replace("\\", "")
    return s


@functools.lru_cache(maxsize=65536)
def _clean_math(s: str) -> str:
    s = _latex_to_plain(s.translate(_SUPERSCRIPTS)).strip().strip("$").strip()
    s = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", s)  # 1,000 -> 1000
    s = re.sub(r"^[a-zA-Z]\w*\s*\(?[a-z]?\)?\s*=\s*(?=[^=]+$)", "", s)  # "x = 5", "f(n) = ..."
    s = s.rstrip(".").strip()
    s = re.sub(r"^\$|\$$", "", s)
    s = re.sub(r"\s*(?:%|percent)$", "", s)
    s = re.sub(r"^\$\s*", "", s)
    return s.strip()


@functools.lru_cache(maxsize=65536)
def parse_expression(text: str) -> tuple[Expr, set[str]]:
    """Parse an arithmetic expression; returns an evaluator and its variable names.

    Raises :class:`ExpressionError` when the text is not such an expression.
    """
    p = _Parser(_clean_math(text))
    fn = p.parse()
    return fn, p.variables


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

