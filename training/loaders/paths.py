"""Where routing data lives: ``--data-dir``, ``$ADAPTIVE_ROUTER_DATA``, or a download cache.

The data root is a folder laid out like the project's shared data folder::

    <root>/routellm/mmlu/responses/mmlu_<subject>.csv, <root>/routellm/gsm8k/..., ...
    <root>/llmrouter/train.json, test.json, default_query_*.jsonl, default_llm.json

Resolution order: the explicit ``data_dir`` argument (the CLI's ``--data-dir``), then the
environment variable ``ADAPTIVE_ROUTER_DATA``, then the download cache
(``~/.cache/adaptive-router/data`` or ``$ADAPTIVE_ROUTER_CACHE/data``), filled from the
upstream repositories at pinned commits when the machine is online. Offline and with nothing
cached, the error says which of the three to provide.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import httpx
from tqdm.auto import tqdm

from adaptive_router.errors import DataError

ENV_VAR = "ADAPTIVE_ROUTER_DATA"

#: Upstream repositories at the commits the shared data folder was taken from.
ROUTELLM_REPO = ("lm-sys/RouteLLM", "0b64fda")
LLMROUTER_REPO = ("ulab-uiuc/LLMRouter", "4e7a796")

#: The 57 MMLU subjects of RouteLLM's per-subject response tables.
MMLU_SUBJECTS = (
    "abstract_algebra anatomy astronomy business_ethics clinical_knowledge college_biology "
    "college_chemistry college_computer_science college_mathematics college_medicine "
    "college_physics computer_security conceptual_physics econometrics electrical_engineering "
    "elementary_mathematics formal_logic global_facts high_school_biology high_school_chemistry "
    "high_school_computer_science high_school_european_history high_school_geography "
    "high_school_government_and_politics high_school_macroeconomics high_school_mathematics "
    "high_school_microeconomics high_school_physics high_school_psychology high_school_statistics "
    "high_school_us_history high_school_world_history human_aging human_sexuality "
    "international_law jurisprudence logical_fallacies machine_learning management marketing "
    "medical_genetics miscellaneous moral_disputes moral_scenarios nutrition philosophy "
    "prehistory professional_accounting professional_law professional_medicine "
    "professional_psychology public_relations security_studies sociology us_foreign_policy "
    "virology world_religions"
).split()

#: Files each source needs, relative to the data root -> path in its upstream repository.
UPSTREAM_FILES: dict[str, dict[str, str]] = {
    "routellm-mmlu": {
        **{f"routellm/mmlu/responses/mmlu_{s}.csv": f"routellm/evals/mmlu/responses/mmlu_{s}.csv"
           for s in MMLU_SUBJECTS},
        "routellm/mmlu/contaminated_prompts.jsonl": "routellm/evals/mmlu/contaminated_prompts.jsonl",
    },
    "routellm-gsm8k": {
        "routellm/gsm8k/gsm8k_responses.csv": "routellm/evals/gsm8k/gsm8k_responses.csv",
        "routellm/gsm8k/contaminated_prompts.jsonl": "routellm/evals/gsm8k/contaminated_prompts.jsonl",
    },
    "routellm-mtbench": {
        "routellm/mt_bench/question.jsonl": "routellm/evals/mt_bench/question.jsonl",
        "routellm/mt_bench/judgements.jsonl": "routellm/evals/mt_bench/judgements.jsonl",
        "routellm/mt_bench/contaminated_prompts.jsonl": "routellm/evals/mt_bench/contaminated_prompts.jsonl",
    },
    "llmrouter": {
        "llmrouter/train.json": "data/dcrouter_preprocessed/train.json",
        "llmrouter/test.json": "data/dcrouter_preprocessed/test.json",
        "llmrouter/default_query_train.jsonl": "data/example_data/query_data/default_query_train.jsonl",
        "llmrouter/default_query_test.jsonl": "data/example_data/query_data/default_query_test.jsonl",
        "llmrouter/default_llm.json": "data/example_data/llm_candidates/default_llm.json",
    },
}


def cache_root() -> Path:
    """The download cache for data sets fetched from upstream."""
    base = os.environ.get("ADAPTIVE_ROUTER_CACHE")
    root = Path(base) if base else Path.home() / ".cache" / "adaptive-router"
    return root / "data"


def upstream_url(source: str, path: str) -> str:
    """The raw-file URL of one upstream file (``path`` in its repository, pinned commit)."""
    repo, commit = ROUTELLM_REPO if source.startswith("routellm") else LLMROUTER_REPO
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"


def _has_files(root: Path, files: Iterable[str]) -> bool:
    return all((root / f).exists() for f in files)


def download_source(source: str, root: Path | None = None, timeout: float = 30.0) -> Path:
    """Fetch one source's files from its upstream repository into ``root`` (the cache).

    Files already present are kept; each file is written atomically. Raises DataError naming
    the alternatives when the network is unreachable or a file cannot be fetched (an HTTP error
    status counts as a failure; redirects are followed). One httpx client serves every file, so
    the ~60 files of a source share one connection.
    """
    root = root or cache_root()
    files = UPSTREAM_FILES[source]
    missing = [(rel, up) for rel, up in files.items() if not (root / rel).exists()]
    if not missing:
        return root
    with httpx.Client(timeout=timeout, follow_redirects=True) as client:
        for rel, up in tqdm(missing, desc=f"downloading {source}", unit="file", disable=len(missing) < 3):
            url = upstream_url(source, up)
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                resp = client.get(url)
                resp.raise_for_status()
            except (httpx.HTTPError, OSError) as exc:
                raise DataError(
                    f"cannot download {source} from {url} ({exc}). This machine looks offline: "
                    f"pass --data-dir DIR (or set {ENV_VAR}=DIR) to a folder laid out like the "
                    "shared data folder (routellm/..., llmrouter/...)"
                ) from None
            tmp = target.with_suffix(target.suffix + ".part")
            tmp.write_bytes(resp.content)
            tmp.replace(target)
    return root


def resolve_data_root(source: str, data_dir: str | Path | None = None, download: bool = True) -> Path:
    """The folder holding ``source``'s files: ``data_dir``, ``$ADAPTIVE_ROUTER_DATA``, the cache,
    or a fresh download into the cache (when ``download`` and online)."""
    files = list(UPSTREAM_FILES.get(source, {}))
    given = data_dir if data_dir is not None else os.environ.get(ENV_VAR) or None
    if given is not None:
        root = Path(given).expanduser()
        if not root.is_dir():
            raise DataError(f"data folder {root} does not exist; pass --data-dir (or {ENV_VAR}) "
                            "pointing at a folder with routellm/ and llmrouter/ inside")
        if files and not _has_files(root, files):
            lacking = [f for f in files if not (root / f).exists()][:3]
            raise DataError(f"data folder {root} lacks the files of {source}, e.g. {lacking}; "
                            "it must be laid out like the shared data folder")
        return root
    cached = cache_root()
    if _has_files(cached, files):
        return cached
    if not download:
        raise DataError(f"no data for {source}: pass --data-dir DIR or set {ENV_VAR}=DIR "
                        "(a folder laid out like the shared data folder)")
    return download_source(source, cached)
