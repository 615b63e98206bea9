"""Find the final answer stated in a free-text solution.

Kept apart from normalisation and matching because it is the one step that reads prose: it
knows where solutions put their answer (a ``\\boxed{...}``, a GSM8K ``#### 42`` line, "the
answer is ...", the phrase after the last "is / are / = / equals" of the final sentence, else the
last number) and returns the answer as written, for :mod:`adaptive_router.grading.match` to
normalise and compare.
"""

from __future__ import annotations

import re

from adaptive_router.grading.expression import _SUPERSCRIPTS

__all__ = ["extract_answer"]

_ANSWER_IS = re.compile(
    r"(?:final answer|the answer|answer)\s*(?:is|:|=)\s*:?\s*(.+?)(?:\.\s|\.?\s*$|\n)",
    re.IGNORECASE,
)
_HASHES = re.compile(r"####\s*([^\n]+)")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?|-?\.\d+")
# the verbs after which a summary sentence states its answer
_CUE = re.compile(r"\s(?:is|are|was|were|equals|equal to|be|gives|yields|=|≈|:|to|by|as)\s+", re.IGNORECASE)
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
