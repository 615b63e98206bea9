"""A small, safe parser of arithmetic expressions, and the LaTeX clean-up answers need first.

Model outputs are untrusted text, so expressions are parsed by this recursive-descent parser,
never by ``eval`` or sympy's ``parse_expr`` (which evaluates Python). The result is an evaluator
of variable bindings, so that :mod:`adaptive_router.grading.match` can compare expressions in
variables by evaluating both sides at probe points.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable

__all__ = ["parse_expression", "ExpressionError"]

_SUPERSCRIPTS = str.maketrans({"²": "^2", "³": "^3", "⁴": "^4", "⁵": "^5", "ⁿ": "^n", "−": "-", "–": "-"})


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
