"""Bring your own table: Records JSONL, or a CSV / JSONL table with a column mapping.

A Records JSONL file (the :mod:`adaptive_router.records` schema, or BEST-Route's flat layout)
loads as is. A table needs one row per prompt and one quality column per model::

    prompt,gpt-4o,gpt-4o-mini,gpt-4o_response
    "What is 2+2?",1,1,"4"

``load_table(path, prompt_column="prompt", model_columns={"gpt-4o": "gpt-4o", ...})`` maps
columns to models (by default every numeric column that is not the prompt/id/split/task column
is a model, its header the model name). Optional mappings name each model's response column and
output-token column; without token columns output tokens are counted from responses when given,
else estimated (:data:`adaptive_router.domain.DEFAULT_OUTPUT_TOKENS`) and flagged. Prices come
from LiteLLM's map under the model names unless ``prices`` gives dollars per million tokens.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adaptive_router.training.loaders.dataset import RoutingDataset
from adaptive_router.training.loaders.tokens import TOKENIZER_NOTE, count_tokens

from adaptive_router.domain import DEFAULT_OUTPUT_TOKENS, Fleet
from adaptive_router.errors import DataError
from adaptive_router.records import ModelSamples, Record, read_records

_META_COLUMNS = ("id", "split", "task", "source")


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{lineno}: not JSON: {exc}") from None
    return rows


def _is_records_file(rows: list[dict[str, Any]]) -> bool:
    if not rows:
        return False
    first = rows[0]
    return "models" in first or any(isinstance(v, dict) and ("responses" in v or "token_num_responses" in v)
                                    for v in first.values())


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    s = str(v).strip().lower()
    if s in ("true", "false"):
        return 1.0 if s == "true" else 0.0
    try:
        return float(s)
    except ValueError:
        return None


def _fleet(models: list[str], prices: Mapping[str, Mapping[str, float]] | None,
           reference: str | None) -> Fleet:
    specs = []
    for m in models:
        spec: dict[str, Any] = {"name": m}
        if prices and m in prices:
            spec["price"] = dict(prices[m])
        specs.append(spec)
    return Fleet.from_dict({"models": specs, "reference": reference})


def load_table(
    path: str | Path,
    prompt_column: str = "prompt",
    model_columns: Mapping[str, str] | None = None,
    response_columns: Mapping[str, str] | None = None,
    output_token_columns: Mapping[str, str] | None = None,
    quality_score: str = "score",
    prices: Mapping[str, Mapping[str, float]] | None = None,
    reference: str | None = None,
    name: str | None = None,
) -> RoutingDataset:
    """A :class:`RoutingDataset` from a Records JSONL file or a CSV/JSONL table (see module doc)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"data file {p} does not exist; pass a data set name "
                        "(routellm-mmlu, routellm-gsm8k, routellm-mtbench, llmrouter, champ) or a path")
    rows = _read_rows(p)
    if not rows:
        raise DataError(f"{p} holds no rows")
    if _is_records_file(rows):
        return _from_records(p, quality_score, prices, reference, name)
    if prompt_column not in rows[0]:
        raise DataError(f"{p} has no prompt column {prompt_column!r}; columns: {sorted(rows[0])}. "
                        "Name it with prompt_column= (CLI: --map prompt=COLUMN)")
    if model_columns is None:
        skip = {prompt_column, *_META_COLUMNS, *(response_columns or {}).values(),
                *(output_token_columns or {}).values()}
        model_columns = {c: c for c, v in rows[0].items() if c not in skip and _number(v) is not None}
    if not model_columns:
        raise DataError(f"{p}: no model quality columns found; map them with model_columns=")
    models = list(model_columns)
    prompts = [str(r[prompt_column]) for r in rows]
    p_tok = count_tokens(prompts)
    out_counts: dict[str, list[int]] = {}
    for m in models:
        if response_columns and m in response_columns:
            out_counts[m] = count_tokens([str(r.get(response_columns[m]) or "") for r in rows])
    records = []
    estimated = False
    for i, row in enumerate(rows):
        samples = {}
        for m, col in model_columns.items():
            if col not in row:
                raise DataError(f"{p} row {i + 1} has no column {col!r} for model {m!r}")
            q = _number(row[col])
            if q is None:
                raise DataError(f"{p} row {i + 1}: {col}={row[col]!r} is not a number")
            responses = [str(row[response_columns[m]])] if response_columns and m in response_columns else []
            if output_token_columns and m in output_token_columns:
                out, est = [int(float(row[output_token_columns[m]]))], False
            elif m in out_counts:
                out, est = [out_counts[m][i]], False
            else:
                out, est = [DEFAULT_OUTPUT_TOKENS], True
            estimated |= est
            samples[m] = ModelSamples(responses=responses, scores={quality_score: [q]},
                                      token_num_prompt=p_tok[i], token_num_responses=out,
                                      estimated_tokens=est)
        records.append(Record(id=str(row.get("id", i)), prompt=prompts[i], source=name or p.stem,
                              split=row.get("split") or None, task=row.get("task") or None,
                              models=samples))
    notes = [TOKENIZER_NOTE]
    if estimated:
        notes.append(f"output tokens ESTIMATED ({DEFAULT_OUTPUT_TOKENS} per answer) where the table "
                     "has no responses or token columns")
    return RoutingDataset(name=name or p.stem, records=records, models=models,
                          quality_score=quality_score, fleet=_fleet(models, prices, reference),
                          notes=notes)


def _from_records(p: Path, quality_score: str, prices, reference, name) -> RoutingDataset:
    records = read_records(p)
    models = list(dict.fromkeys(m for r in records for m in r.models))
    incomplete = [r.id for r in records if set(r.models) != set(models)]
    if incomplete:
        raise DataError(f"{p}: records {incomplete[:5]} lack some of the models {models}; every "
                        "record needs samples for every model")
    present = set.intersection(*(set(r.models[m].scores) for r in records for m in models))
    if quality_score not in present:
        if len(present) == 1:
            quality_score = next(iter(present))
        else:
            raise DataError(f"{p}: quality score {quality_score!r} not in every record; scores "
                            f"present everywhere: {sorted(present)}. Pass quality_score=")
    notes = []
    if any(r.models[m].estimated_tokens for r in records for m in models):
        notes.append("some token counts are estimates (estimated_tokens)")
    return RoutingDataset(name=name or p.stem, records=records, models=models,
                          quality_score=quality_score, fleet=_fleet(models, prices, reference),
                          notes=notes)


def parse_column_mapping(spec: str | None) -> dict[str, Any]:
    """Keyword arguments of :func:`load_table` from a CLI mapping string.

    ``"prompt=question,gpt-4o=big_ok,gpt-4o-mini=small_ok,gpt-4o-mini.response=small_text,
    gpt-4o-mini.output_tokens=small_tokens,quality=correct,reference=gpt-4o"``: ``prompt=`` names
    the prompt column, ``quality=`` the score name, ``reference=`` the strong model, ``M=C`` maps
    model M's quality to column C, ``M.response=C`` and ``M.output_tokens=C`` its response and
    output-token columns.
    """
    if not spec:
        return {}
    out: dict[str, Any] = {}
    models: dict[str, str] = {}
    responses: dict[str, str] = {}
    tokens: dict[str, str] = {}
    for item in (x.strip() for x in spec.split(",") if x.strip()):
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise DataError(f"column mapping item {item!r} is not KEY=COLUMN; e.g. prompt=question,gpt-4o=score_a")
        key, value = key.strip(), value.strip()
        if key == "prompt":
            out["prompt_column"] = value
        elif key == "quality":
            out["quality_score"] = value
        elif key == "reference":
            out["reference"] = value
        elif key.endswith(".response"):
            responses[key[: -len(".response")]] = value
        elif key.endswith(".output_tokens"):
            tokens[key[: -len(".output_tokens")]] = value
        else:
            models[key] = value
    if models:
        out["model_columns"] = models
    if responses:
        out["response_columns"] = responses
    if tokens:
        out["output_token_columns"] = tokens
    return out

