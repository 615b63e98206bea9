"""Security properties of the package (issue 9), checked on the source and on behaviour.

- No pickle, ``torch.load``, ``joblib.load``, ``numpy.load(allow_pickle=True)`` or ``eval`` of
  anything: checkpoints are JSON + safetensors (tests/test_bad_inputs.py proves a pickle is
  refused without being run).
- ``trust_remote_code`` is never switched on by the package: every call passes a variable or
  False, and every parameter of that name defaults to False.
- Per-request knobs outside their bounds are rejected (the knob table, and the matrix in
  tests/test_bad_inputs.py); API keys never reach the traffic log (below, and through a real
  proxy in tests/integration/test_proxy_bad_inputs.py).
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = ("adaptive_router", "integrations", "training")
UNSAFE_CALLS = {
    ("pickle", "load"), ("pickle", "loads"), ("cPickle", "load"), ("dill", "load"), ("dill", "loads"),
    ("cloudpickle", "load"), ("cloudpickle", "loads"), ("joblib", "load"), ("torch", "load"),
    ("marshal", "loads"), ("shelve", "open"),
}
UNSAFE_NAMES = {"eval", "exec"}


def package_files() -> list[Path]:
    files = [p for d in PACKAGE_DIRS for p in (ROOT / d).rglob("*.py")]
    assert len(files) > 20, "the package sources were not found"
    return files


def dotted(node: ast.AST) -> tuple[str, ...]:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return tuple(reversed(parts))


def unsafe_calls(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in {"pickle", "dill", "cloudpickle", "joblib"}:
            names = {a.name for a in node.names}
            if names & {"load", "loads", "Unpickler"}:
                found.append((node.lineno, f"from {node.module} import {sorted(names)}"))
        if not isinstance(node, ast.Call):
            continue
        name = dotted(node.func)
        if len(name) >= 2 and (name[-2], name[-1]) in UNSAFE_CALLS:
            found.append((node.lineno, ".".join(name)))
        if isinstance(node.func, ast.Name) and node.func.id in UNSAFE_NAMES:  # not model.eval()
            found.append((node.lineno, name[0]))
        if name[-1:] == ("load",) and name[:1] in (("np",), ("numpy",)):
            for kw in node.keywords:
                if kw.arg == "allow_pickle" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                    found.append((node.lineno, "numpy.load(allow_pickle=...)"))
        if name[-1:] == ("Unpickler",):
            found.append((node.lineno, ".".join(name)))
    return found


def remote_code_switched_on(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg == "trust_remote_code" and isinstance(kw.value, ast.Constant) and kw.value.value is not False:
                    found.append((node.lineno, f"trust_remote_code={kw.value.value!r}"))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = node.args
            positional = args.posonlyargs + args.args
            defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
            pairs = list(zip(positional, defaults, strict=True)) + list(zip(args.kwonlyargs, args.kw_defaults,
                                                                             strict=True))
            for arg, default in pairs:
                if arg.arg == "trust_remote_code" and not (isinstance(default, ast.Constant) and
                                                            default.value is False):
                    found.append((node.lineno, f"{node.name}(trust_remote_code default not False)"))
        if isinstance(node, ast.AnnAssign | ast.Assign):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            value = node.value
            if any(isinstance(t, ast.Name) and t.id == "trust_remote_code" for t in targets) and \
                    isinstance(value, ast.Constant) and value.value is True:
                found.append((node.lineno, "trust_remote_code = True"))
    return found


def test_no_unpickling_or_eval_anywhere_in_the_package() -> None:
    offenders = []
    for path in package_files():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        offenders += [f"{path.relative_to(ROOT)}:{line}: {what}" for line, what in unsafe_calls(tree)]
    assert not offenders, "unsafe deserialisation or eval:\n" + "\n".join(offenders)


def test_trust_remote_code_is_off_unless_the_caller_asks() -> None:
    offenders = []
    for path in package_files():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        offenders += [f"{path.relative_to(ROOT)}:{line}: {what}" for line, what in remote_code_switched_on(tree)]
    assert not offenders, "trust_remote_code switched on:\n" + "\n".join(offenders)


def test_the_scanners_find_what_they_look_for() -> None:
    """The checks above would fail on offending code (they are not vacuous)."""
    bad = ast.parse(
        "import pickle, torch\n"
        "from joblib import load\n"
        "def f(trust_remote_code=True):\n"
        "    pickle.loads(b'')\n"
        "    torch.load('x.pt')\n"
        "    np.load('a.npy', allow_pickle=True)\n"
        "    AutoModel.from_pretrained('m', trust_remote_code=True)\n"
        "    eval('1')\n"
        "    model.to('cpu').eval()\n")
    assert {w for _, w in unsafe_calls(bad)} >= {"pickle.loads", "torch.load", "numpy.load(allow_pickle=...)",
                                                  "eval"}
    assert any("from joblib" in w for _, w in unsafe_calls(bad))
    assert [w for _, w in unsafe_calls(bad)].count("eval") == 1  # model.eval() is not eval
    assert len(remote_code_switched_on(bad)) == 2
    good = ast.parse("def f(trust_remote_code: bool = False):\n"
                     "    AutoModel.from_pretrained('m', trust_remote_code=trust_remote_code)\n")
    assert remote_code_switched_on(good) == [] and unsafe_calls(good) == []


@pytest.mark.parametrize("name,inside,outside", [
    ("threshold", [0.0, 0.5, 1.0], [-0.01, 1.01, math.inf, math.nan, "x", None]),
    ("budget_usd", [0.0, 0.002, 1000.0], [-1e-9, 1000.5, math.inf, math.nan]),
    ("tradeoff", [0.0, 3.0], [-0.1, 1e6]),
    ("strong_share", [0.0, 0.3, 1.0], [-0.5, 1.5]),
])
def test_every_knob_has_bounds_and_rejects_values_outside(name, inside, outside) -> None:
    from adaptive_router.errors import InvalidRequestError
    from adaptive_router.policy import KNOB_BOUNDS, check_knob

    assert name in KNOB_BOUNDS
    for v in inside:
        assert check_knob(name, v) == pytest.approx(float(v))
    for v in outside:
        with pytest.raises(InvalidRequestError, match=name):
            check_knob(name, v)


def test_keys_are_redacted_from_traffic_log_lines(tmp_path) -> None:
    from adaptive_router.traffic import TrafficLogLine, TrafficLogWriter

    fake = "sk-proj-FAKEfake0123456789ABCDEFabcdef"
    writer = TrafficLogWriter(tmp_path / "traffic.jsonl")
    writer.write(TrafficLogLine(
        prompt=f"my key is {fake}, please keep it safe",
        messages=[{"role": "user", "content": f"Authorization: Bearer {fake}"}],
        decision={"model": "m", "api_key": fake, "headers": {"x-api-key": fake, "Authorization": fake}},
        error=f"upstream said: invalid api key {fake}",
    ))
    text = (tmp_path / "traffic.jsonl").read_text(encoding="utf-8")
    assert fake not in text and "FAKEfake" not in text
    assert "[REDACTED]" in text
