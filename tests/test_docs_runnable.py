"""The README's and docs' code blocks marked runnable run as written.

A block is marked by an HTML comment on the line right before its fence (GitHub renders neither
the comment nor anything of it, and still highlights the fence's language)::

    <!-- runnable -->          runs in the default suite (each such block takes under a minute)
    <!-- runnable: slow -->    runs with the slow suite (`make test-slow`): a proxy, minutes of work

``bash`` blocks run under ``bash -euo pipefail`` (a failing command fails the test) and
``python`` blocks under this interpreter. Each runs "as written" from a fresh folder that holds
symbolic links to the repository's top-level entries, ``runs/`` excepted: relative paths such as
``examples/fleet.yaml`` and ``.venv/bin/python`` resolve as from the repository root, while every
output the block writes (``runs/...``, ``ckpt/...``) lands in that temporary folder, never in the
working tree. ``adaptive-router`` and ``python`` are this environment's (its ``bin`` folder first
on ``PATH``, as after ``. .venv/bin/activate``). A block that names a public data set needs
``ADAPTIVE_ROUTER_DATA`` (skipped without it: the data sets are downloaded on first use, and the
test suite runs offline).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

MARKER = re.compile(r"^<!--\s*runnable(?::\s*(?P<kind>[\w-]+))?\s*-->\s*$")
FENCE = re.compile(r"^(?P<fence>```+|~~~+)\s*(?P<lang>[\w-]*)")
LANGUAGES = {"bash": "bash", "sh": "bash", "shell": "bash", "python": "python"}
KINDS = {None: 300, "slow": 3600}  # kind -> timeout in seconds
#: The public data sets; a block naming one needs ADAPTIVE_ROUTER_DATA (offline suite).
DATA_SET = re.compile(r"--data[ =](routellm-|champ|llmrouter)|load_dataset\(|champ/prepare\.py")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    language: str  # bash | python
    kind: str | None  # None (default suite) | "slow"
    code: str

    @property
    def id(self) -> str:
        return f"{_rel(self.page)}:{self.line}"


def _rel(page: Path) -> str:
    return str(page.relative_to(ROOT)) if page.is_relative_to(ROOT) else page.name


def marked_blocks(pages: list[Path] = PAGES) -> list[Block]:
    """Every block whose fence follows a runnable marker; a marker on anything else is an error
    (it would silently run nothing)."""
    blocks = []
    for page in pages:
        lines = page.read_text(encoding="utf-8").splitlines()
        for i, text in enumerate(lines):
            m = MARKER.match(text.strip())
            if not m:
                continue
            where = f"{_rel(page)}:{i + 1}"
            kind = m.group("kind")
            if kind not in KINDS:
                raise ValueError(f"{where}: unknown runnable marker {kind!r}; use one of "
                                 + ", ".join("runnable" if k is None else f"runnable: {k}" for k in KINDS))
            fence = FENCE.match(lines[i + 1]) if i + 1 < len(lines) else None
            if fence is None or fence.group("lang") not in LANGUAGES:
                raise ValueError(f"{where}: the runnable marker must be right before a ```bash or "
                                 "```python fence")
            end = next((j for j in range(i + 2, len(lines))
                        if lines[j].strip().startswith(fence.group("fence"))), None)
            if end is None:
                raise ValueError(f"{where}: the marked block's fence is never closed")
            blocks.append(Block(page, i + 2, LANGUAGES[fence.group("lang")], kind,
                                "\n".join(lines[i + 2:end]) + "\n"))
    return blocks


def _params() -> list:
    return [pytest.param(b, id=b.id, marks=[pytest.mark.slow] if b.kind == "slow" else [])
            for b in marked_blocks()]


def _workdir(tmp_path: Path) -> Path:
    """A folder that looks like the repository root (links to its entries) but keeps outputs."""
    work = tmp_path / "repo"
    work.mkdir()
    for entry in ROOT.iterdir():
        if entry.name in {"runs", ".git"}:
            continue
        (work / entry.name).symlink_to(entry)
    return work


def _stop_group(pgid: int) -> None:
    """SIGTERM the block's process group, then SIGKILL what is still there after a grace period."""
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


def run_block(block: Block, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    work = _workdir(tmp_path)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"})
    script = tmp_path / ("block.sh" if block.language == "bash" else "block.py")
    script.write_text(block.code, encoding="utf-8")
    cmd = (["bash", "-euo", "pipefail", str(script)] if block.language == "bash"
           else [sys.executable, str(script)])
    # Output goes to a file, not a pipe: a proxy the block leaves running in the background would
    # hold a pipe open after the block ends. Its own process group, so that proxy is stopped too.
    log = tmp_path / "output.txt"
    with log.open("w", encoding="utf-8") as sink:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        try:
            proc.wait(timeout=KINDS[block.kind])
        except subprocess.TimeoutExpired:
            _stop_group(proc.pid)
            pytest.fail(f"{block.id} did not finish within {KINDS[block.kind]} s; its output:\n"
                        f"{log.read_text(errors='replace')[-6000:]}")
        finally:
            _stop_group(proc.pid)  # whatever the block left running
    out = log.read_text(encoding="utf-8", errors="replace")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, "")


@pytest.mark.parametrize("block", _params())
def test_marked_block_runs_as_written(block: Block, tmp_path: Path) -> None:
    if DATA_SET.search(block.code) and not os.environ.get("ADAPTIVE_ROUTER_DATA"):
        pytest.skip("names a public data set: set ADAPTIVE_ROUTER_DATA (offline suite)")
    t0 = time.perf_counter()
    result = run_block(block, tmp_path)
    assert result.returncode == 0, (f"{block.id} ({block.language}) failed with status "
                                    f"{result.returncode} after {time.perf_counter() - t0:.0f} s; "
                                    f"its code:\n{block.code}\nits output:\n{result.stdout[-6000:]}")


def test_markers_are_well_formed_and_cover_the_front_page() -> None:
    """Every marker sits on a bash or python block, and the README's own examples are marked."""
    blocks = marked_blocks()
    assert {b.page.name for b in blocks} >= {"README.md"}
    readme = [b for b in blocks if b.page.name == "README.md"]
    assert {b.language for b in readme} == {"bash", "python"}


def test_no_documented_command_writes_into_the_committed_docs_or_examples() -> None:
    """Outputs go to runs/ (git-ignored) or elsewhere: a user following the docs must not
    overwrite committed files (the benchmarks' table refresh is `make bench`'s job, not a doc's)."""
    writes = re.compile(r"(--out|--output|>)\s*(\./)?(docs|examples)/")
    offenders = []
    for page in PAGES:
        for block in re.findall(r"^```(?:bash|sh|shell)\n(.*?)^```", page.read_text(encoding="utf-8"),
                                re.S | re.M):
            offenders += [f"{_rel(page)}: {line.strip()}" for line in block.splitlines()
                          if writes.search(line)]
    assert not offenders, "\n".join(offenders)


def test_marker_parsing(tmp_path: Path) -> None:
    page = tmp_path / "probe.md"
    page.write_text("text\n<!-- runnable -->\n```bash\necho one\n```\n\n```bash\necho unmarked\n```\n"
                    "<!-- runnable: slow -->\n```python\nprint(2)\n```\n", encoding="utf-8")
    blocks = marked_blocks([page])
    assert [(b.line, b.language, b.kind, b.code) for b in blocks] == [
        (3, "bash", None, "echo one\n"), (11, "python", "slow", "print(2)\n")]
