"""Routing data sets as :class:`RoutingDataset`s of Records.

``load_dataset(name_or_path, data_dir=None, **kw)`` loads one of :data:`DATASETS` or a file:

- ``routellm-mmlu``, ``routellm-gsm8k``, ``routellm-mtbench``: RouteLLM's two-model tables;
- ``llmrouter``: LLMRouter's nine-model score table;
- ``champ``: CHAMP competition math, four models x nine samples (from the champ-dataset package);
- a path to a Records JSONL, or a CSV/JSONL table with a column mapping (:func:`load_table`).

The data root is ``data_dir`` (CLI ``--data-dir``), else ``$ADAPTIVE_ROUTER_DATA``, else a
download cache filled from upstream when online (:mod:`.paths`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from adaptive_router.training.loaders.dataset import (
    CONTAMINATION_COSINE,
    RoutingDataset,
    decontaminate_records,
    near_duplicates,
)
from adaptive_router.training.loaders.paths import ENV_VAR, resolve_data_root

from adaptive_router.errors import DataError

__all__ = ["DATASETS", "RoutingDataset", "load_dataset", "decontaminate_records", "near_duplicates",
           "CONTAMINATION_COSINE", "resolve_data_root", "ENV_VAR"]


def _loader(module: str, func: str) -> Callable[..., RoutingDataset]:
    def load(data_dir: str | Path | None = None, **kw: Any) -> RoutingDataset:
        import importlib

        return getattr(importlib.import_module(f"adaptive_router.training.loaders.{module}"), func)(
            data_dir, **kw)
    return load


#: Known data set names -> loader(data_dir, **kw).
DATASETS: dict[str, Callable[..., RoutingDataset]] = {
    "routellm-mmlu": _loader("routellm", "load_mmlu"),
    "routellm-gsm8k": _loader("routellm", "load_gsm8k"),
    "routellm-mtbench": _loader("routellm", "load_mtbench"),
    "llmrouter": _loader("llmrouter", "load_llmrouter"),
    "champ": _loader("champ", "load_champ"),
}


def load_dataset(name_or_path: str | Path, data_dir: str | Path | None = None, **kw: Any) -> RoutingDataset:
    """A data set by name (:data:`DATASETS`) or from a Records JSONL / CSV / JSONL table path.

    Extra keywords go to the loader (for tables: ``prompt_column``, ``model_columns``,
    ``response_columns``, ``output_token_columns``, ``cost_columns``, ``task_column``,
    ``quality_score``, ``prices``, ``reference``). ``fleet`` (any data set) prices and shapes
    the data with the user's fleet (:meth:`RoutingDataset.with_fleet`).
    """
    key = str(name_or_path)
    fleet = kw.pop("fleet", None)
    if key in DATASETS:
        ds = DATASETS[key](data_dir, **kw)
        return ds.with_fleet(fleet) if fleet is not None else ds
    path = Path(key)
    if path.suffix.lower() in (".csv", ".jsonl", ".json") or path.exists():
        from adaptive_router.training.loaders.generic import load_table

        return load_table(path, fleet=fleet, **kw)
    raise DataError(f"unknown data set {key!r}; use one of {sorted(DATASETS)} or a .csv/.jsonl path")
