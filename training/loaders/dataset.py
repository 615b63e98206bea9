"""The :class:`RoutingDataset`: records, models, quality score, priced fleet, and splits.

Splits are deterministic (a seeded permutation of record ids, or the data set's own ``split``
field when it defines one; stratified by task when a table names a task column, so that a
small category is not left out of the test split by chance) and the test split is decontaminated: a test prompt whose MiniLM
embedding has cosine >= 0.95 with any train or validation prompt is dropped, the criterion
RouteLLM used to build its ``contaminated_prompts.jsonl`` files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adaptive_router.domain import Fleet
from adaptive_router.errors import DataError
from adaptive_router.records import Record

#: Cosine similarity at or above which a test prompt counts as a near-duplicate of training data.
CONTAMINATION_COSINE = 0.95


@dataclass
class RoutingDataset:
    """A routing data set: every record scored for every model, and what the models cost.

    ``quality_score`` names the Record score holding quality in [0, 1] (``"correct"`` for 0/1
    correctness, ``"judge"`` for a normalised judge score, ``"score"`` for a task metric).
    ``fleet`` prices every model; its ``reference`` is the strong / best model. ``notes`` say
    what a reader of any dollar figure must know (estimated tokens, assumed prices).
    """

    name: str
    records: list[Record]
    models: list[str]
    quality_score: str
    fleet: Fleet
    notes: list[str] = field(default_factory=list)
    _split_cache: dict[tuple[Any, ...], tuple[list[Record], list[Record], list[Record]]] = field(
        default_factory=dict, repr=False, compare=False)
    #: test records dropped by the last decontamination, for reporting
    dropped_contaminated: list[str] = field(default_factory=list, repr=False, compare=False)
    #: cut every task's records in the split fractions (a table with a task column); the
    #: built-in data sets keep their published, unstratified splits
    stratify_by_task: bool = False

    def __len__(self) -> int:
        return len(self.records)

    @property
    def reference(self) -> str:
        """The strong / best model (the fleet's reference)."""
        return self.fleet.reference_model()

    def with_fleet(self, fleet: Fleet) -> RoutingDataset:
        """This data set priced and shaped by the user's ``fleet``, which wins over the table's
        and LiteLLM's prices: its models (each must be in the data; the data's other models are
        left out), its reference and its allowed sample counts ``n``. A fleet model without a
        price (nor ``price_model``) keeps the data's own pricing (e.g. CHAMP's PaLM 2)."""
        import dataclasses

        missing = [m for m in fleet.model_names if m not in self.models]
        if missing:
            raise DataError(f"fleet {fleet.source or ''} names models {missing} that the data "
                            f"{self.name!r} does not hold; its models are {self.models}. Name the "
                            "fleet's models as the data does (or map the columns with --columns)")
        left_out = [m for m in self.models if m not in fleet.model_names]
        notes = list(self.notes) + [f"prices, reference and n from the fleet {fleet.source or '(given)'}"]
        if left_out:
            notes.append(f"models not in the fleet left out: {left_out}")
        from adaptive_router.training.recorded_cost import with_reference

        ours = {m.name: m for m in self.fleet.models}
        models = [m if m.price is not None or m.price_model is not None or m.name not in ours
                  else m.model_copy(update={"price": ours[m.name].price, "price_model": ours[m.name].price_model})
                  for m in fleet.models]  # a model the fleet does not price keeps the data's price
        fleet = with_reference(fleet.model_copy(update={"models": models}), self.records)
        return dataclasses.replace(self, models=list(fleet.model_names), fleet=fleet, notes=notes,
                                   _split_cache={}, dropped_contaminated=[])

    def candidate_keys(self, n: Sequence[int] = (1,)) -> list[str]:
        """Candidate keys ``"model#n"`` for every model and every n in ``n``."""
        return [f"{m}#{k}" for m in self.models for k in n]

    def quality(self, model: str) -> float:
        """Mean single-sample quality of ``model`` over all records."""
        return float(np.mean([np.mean(r.models[model].score(self.quality_score)) for r in self.records]))

    def splits(
        self,
        seed: int = 0,
        val: float = 0.1,
        test: float = 0.2,
        decontaminate: bool = True,
        threshold: float = CONTAMINATION_COSINE,
        encoder: Any = None,
    ) -> tuple[list[Record], list[Record], list[Record]]:
        """Deterministic (train, validation, test) records.

        When records carry a ``split`` of ``"train"`` / ``"test"`` (llmrouter), those are kept
        and validation is carved out of train with the seed; otherwise the records are permuted
        with ``seed`` and cut into ``test`` and ``val`` fractions. With ``decontaminate`` the
        test prompts whose embedding cosine to a train/validation prompt is >= ``threshold``
        are dropped (see :func:`decontaminate`).
        """
        if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
            raise DataError(f"val={val} and test={test} must be fractions summing to less than 1")
        key = (seed, val, test, decontaminate, threshold)
        if key in self._split_cache:
            return self._split_cache[key]
        rng = np.random.default_rng(seed)
        given = {r.split for r in self.records}
        if given >= {"train", "test"} and given <= {"train", "test", "val", "validation"}:
            pool = [r for r in self.records if r.split == "train"]
            test_rs = [r for r in self.records if r.split == "test"]
            val_rs = [r for r in self.records if r.split in ("val", "validation")]
            if not val_rs:
                _, val_rs, train_rs = self._cut(pool, rng, 0.0, val)
            else:
                train_rs = pool
        else:
            test_rs, val_rs, train_rs = self._cut(self.records, rng, test, val)
        if decontaminate and test_rs and (train_rs or val_rs):
            kept, dropped = decontaminate_records(test_rs, train_rs + val_rs, threshold, encoder)
            self.dropped_contaminated = [r.id for r in dropped]
            test_rs = kept
        out = (train_rs, val_rs, test_rs)
        self._split_cache[key] = out
        return out

    def _groups(self, records: Sequence[Record]) -> list[list[int]]:
        """Indices of ``records`` per task (one group unless stratifying by task)."""
        if not self.stratify_by_task or len({r.task for r in records}) < 2:
            return [list(range(len(records)))]
        by: dict[str, list[int]] = {}
        for i, r in enumerate(records):
            by.setdefault(r.task or "", []).append(i)
        return [by[k] for k in sorted(by)]

    def _cut(self, records: Sequence[Record], rng: np.random.Generator, first: float,
             second: float) -> tuple[list[Record], list[Record], list[Record]]:
        """(first, second, rest) fractions of ``records``: one seeded permutation, or one per
        task group when stratifying. Each part keeps the records' order."""
        parts: tuple[list[int], list[int], list[int]] = ([], [], [])
        for group in self._groups(records):
            order = [group[i] for i in rng.permutation(len(group))]
            n_first = int(round(first * len(group)))
            n_second = int(round(second * len(group)))
            parts[0].extend(order[:n_first])
            parts[1].extend(order[n_first:n_first + n_second])
            parts[2].extend(order[n_first + n_second:])
        first_rs, second_rs, rest = ([records[i] for i in sorted(p)] for p in parts)
        return first_rs, second_rs, rest

    def summary(self) -> dict[str, Any]:
        """Size, models, per-model mean quality, reference and notes."""
        return {
            "name": self.name,
            "records": len(self.records),
            "models": self.models,
            "quality_score": self.quality_score,
            "reference": self.reference,
            "quality": {m: round(self.quality(m), 4) for m in self.models},
            "notes": self.notes,
        }


def default_encoder() -> Any:
    """MiniLM with the shared on-disk embedding cache, so each text is embedded once across
    processes; one instance per process (loading the model costs seconds)."""
    from adaptive_router.encoders import shared_encoder, training_cache_path

    return shared_encoder(disk_cache=training_cache_path())


def near_duplicates(
    queries: Sequence[str], corpus: Sequence[str], threshold: float = CONTAMINATION_COSINE,
    encoder: Any = None, block: int = 1024,
) -> np.ndarray:
    """Boolean mask over ``queries``: True where some corpus text has cosine >= ``threshold``.

    Embeddings are L2-normalised, so the cosine is a dot product; the corpus is scanned in
    blocks to keep memory flat on 14k x 14k comparisons.
    """
    if not queries or not corpus:
        return np.zeros(len(queries), dtype=bool)
    enc = encoder or default_encoder()
    progress = len(queries) + len(corpus) > 2000
    q = np.asarray(enc.encode(list(queries), progress=progress), dtype=np.float32)
    c = np.asarray(enc.encode(list(corpus), progress=progress), dtype=np.float32)
    best = np.full(len(queries), -1.0, dtype=np.float32)
    for i in range(0, len(c), block):
        sims = q @ c[i:i + block].T
        best = np.maximum(best, sims.max(axis=1))
    return best >= threshold - 1e-6


def decontaminate_records(
    test: Sequence[Record], train: Sequence[Record], threshold: float = CONTAMINATION_COSINE,
    encoder: Any = None,
) -> tuple[list[Record], list[Record]]:
    """Split ``test`` into (kept, dropped): dropped prompts are near-duplicates of ``train``."""
    mask = near_duplicates([r.prompt for r in test], [r.prompt for r in train], threshold, encoder)
    kept = [r for r, bad in zip(test, mask, strict=True) if not bad]
    dropped = [r for r, bad in zip(test, mask, strict=True) if bad]
    return kept, dropped
