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
from LiteLLM's map under the model names unless ``prices`` gives dollars per million tokens, and
a ``fleet`` wins over both (prices, reference model, allowed n).

``cost_columns`` name each model's real cost per answer (what the provider billed): where a row
has it, evaluation and training use it instead of price x tokens, so a table of models that no
price map knows needs no prices at all. ``task_column`` names a task / category column: it
becomes each Record's ``task``, a stratification key of the splits and the domain labels of the
routers that learn domains (AR-LLM's, and BEST-Route's ``domains`` / ``domain_prior`` features).
Without a mapping, headers ``MODEL.response``, ``MODEL.output_tokens`` and ``MODEL.cost_usd``
are recognised by their suffix.
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
#: Column-name suffixes of a model's extra columns (``gpt-4o.cost_usd``), recognised by default.
_SUFFIXES = {".response": "response_columns", ".output_tokens": "output_token_columns",
             ".cost_usd": "cost_columns"}


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
           reference: str | None, records: list[Record] | None = None) -> Fleet:
    """The data's fleet; without a reference and with some model unpriced, the model whose
    recorded answers cost most is the reference (the dearest, as for priced fleets)."""
    from adaptive_router.training.recorded_cost import with_reference

    specs = []
    for m in models:
        spec: dict[str, Any] = {"name": m}
        if prices and m in prices:
            spec["price"] = dict(prices[m])
        specs.append(spec)
    fleet = Fleet.from_dict({"models": specs, "reference": reference})
    return with_reference(fleet, records) if records else fleet


def _suffix_columns(columns: list[str], given: dict[str, dict[str, str] | None]) -> dict[str, dict[str, str]]:
    """``MODEL.response`` / ``MODEL.output_tokens`` / ``MODEL.cost_usd`` headers, for the
    mappings the caller did not give."""
    found: dict[str, dict[str, str]] = {}
    for col in columns:
        for suffix, kind in _SUFFIXES.items():
            if col.endswith(suffix) and len(col) > len(suffix) and given.get(kind) is None:
                found.setdefault(kind, {})[col[: -len(suffix)]] = col
    return found


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
    cost_columns: Mapping[str, str] | None = None,
    task_column: str | None = None,
    fleet: Fleet | None = None,
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
        ds = _from_records(p, quality_score, prices, reference, name)
        return ds.with_fleet(fleet) if fleet is not None else ds
    if task_column is not None and task_column not in rows[0]:
        raise DataError(f"{p} has no task column {task_column!r}; columns: {sorted(rows[0])}")
    task_col = task_column or ("task" if "task" in rows[0] else None)
    suffixed = _suffix_columns(list(rows[0]), {"response_columns": response_columns,
                                               "output_token_columns": output_token_columns,
                                               "cost_columns": cost_columns})
    response_columns = response_columns if response_columns is not None else suffixed.get("response_columns")
    output_token_columns = (output_token_columns if output_token_columns is not None
                            else suffixed.get("output_token_columns"))
    cost_columns = cost_columns if cost_columns is not None else suffixed.get("cost_columns")
    if prompt_column not in rows[0]:
        raise DataError(f"{p} has no prompt column {prompt_column!r}; columns: {sorted(rows[0])}. "
                        "Name it with prompt_column= (CLI: --map prompt=COLUMN)")
    if model_columns is None:
        skip = {prompt_column, *_META_COLUMNS, *(response_columns or {}).values(),
                *(output_token_columns or {}).values(), *(cost_columns or {}).values(),
                *([task_col] if task_col else [])}
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
            cost = _row_cost(p, i, row, cost_columns, m)
            estimated |= est and cost is None  # a recorded cost needs no token estimate
            samples[m] = ModelSamples(responses=responses, scores={quality_score: [q]},
                                      token_num_prompt=p_tok[i], token_num_responses=out,
                                      estimated_tokens=est, cost_usd=cost)
        task = row.get(task_col) if task_col else None
        records.append(Record(id=str(row.get("id", i)), prompt=prompts[i], source=name or p.stem,
                              split=row.get("split") or None,
                              task=str(task).strip() or None if task not in (None, "") else None,
                              models=samples))
    notes = [TOKENIZER_NOTE]
    if estimated:
        notes.append(f"output tokens ESTIMATED ({DEFAULT_OUTPUT_TOKENS} per answer) where the table "
                     "has no responses or token columns")
    if task_col:
        tasks = sorted({r.task for r in records if r.task})
        notes.append(f"task column {task_col!r}: {len(tasks)} tasks, a stratification key of the splits "
                     "and the domain labels of the routers that learn domains")
    ds = RoutingDataset(name=name or p.stem, records=records, models=models,
                        quality_score=quality_score, fleet=_fleet(models, prices, reference, records),
                        notes=notes, stratify_by_task=bool(task_col))
    return ds.with_fleet(fleet) if fleet is not None else ds


def _row_cost(p: Path, i: int, row: Mapping[str, Any], cost_columns: Mapping[str, str] | None,
              model: str) -> list[float] | None:
    """The row's real cost of ``model``'s answer, or None when the table has none (an empty
    cell falls back to price x tokens for that answer)."""
    if not cost_columns or model not in cost_columns:
        return None
    col = cost_columns[model]
    if col not in row:
        raise DataError(f"{p} has no cost column {col!r} for model {model!r}; columns: {sorted(row)}")
    if row[col] in (None, ""):
        return None
    v = _number(row[col])
    if v is None or v < 0:
        raise DataError(f"{p} row {i + 1}: {col}={row[col]!r} is not a dollar amount >= 0")
    return [v]


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
                          quality_score=quality_score, fleet=_fleet(models, prices, reference, records),
                          notes=notes)


def parse_column_mapping(spec: str | None) -> dict[str, Any]:
    """Keyword arguments of :func:`load_table` from a CLI mapping string.

    ``"prompt=question,gpt-4o=big_ok,gpt-4o-mini=small_ok,gpt-4o-mini.response=small_text,
    gpt-4o-mini.output_tokens=small_tokens,gpt-4o-mini.cost_usd=small_cost,task=category,
    quality=correct,reference=gpt-4o"``: ``prompt=`` names the prompt column, ``quality=`` the
    score name, ``reference=`` the strong model, ``task=`` the task / category column, ``M=C``
    maps model M's quality to column C, ``M.response=C``, ``M.output_tokens=C`` and
    ``M.cost_usd=C`` its response, output-token and real-cost-per-answer columns.
    """
    if not spec:
        return {}
    out: dict[str, Any] = {}
    models: dict[str, str] = {}
    responses: dict[str, str] = {}
    tokens: dict[str, str] = {}
    costs: dict[str, str] = {}
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
        elif key == "task":
            out["task_column"] = value
        elif key.endswith(".cost_usd"):
            costs[key[: -len(".cost_usd")]] = value
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
    if costs:
        out["cost_columns"] = costs
    return out

