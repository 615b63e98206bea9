"""What a recorded answer cost: the real bill when the data has it, else price x tokens.

Why both: a user's own table often knows what each answer really cost (the provider's bill,
with its discounts, cached prompts and self-hosted models that no price map lists), while the
public data sets only know token counts, priced from LiteLLM's map or a fleet file. Evaluation
(:func:`adaptive_router.training.evaluate.cost_matrix`), cascade replay and the default-knob
choice of training all price candidates through :func:`candidate_cost`, so the two sources are
never mixed within one answer, and :func:`cost_basis` says which one each model used.

A candidate (model, n) with recorded costs pays ``n`` answers of the mean recorded cost; when
the model also has a price, the prompt (included in every recorded answer) is counted once, as
in BEST-Route's accounting: ``n x mean_cost - (n - 1) x prompt_tokens x input_price``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from adaptive_router.domain import Fleet, Price
from adaptive_router.errors import PriceNotFoundError
from adaptive_router.records import ModelSamples, Record

RECORDED = "recorded cost_usd"
PRICED = "price x tokens"
MIXED = "recorded cost_usd where present, else price x tokens"


def candidate_cost(samples: ModelSamples, n: int, price: Price | None) -> float:
    """Dollars of one call drawing ``n`` samples of this model for this prompt."""
    if samples.cost_usd:
        mean_cost = float(np.mean(samples.cost_usd))
        if n <= 1:
            return mean_cost
        if price is None:  # the prompt's share is unknown: every answer pays it (an upper bound)
            return n * mean_cost
        prompt = samples.token_num_prompt * price.input_per_token
        return max(mean_cost, n * mean_cost - (n - 1) * prompt)
    if price is None:
        raise PriceNotFoundError("no price and no recorded cost_usd")  # resolve_prices prevents it
    mean_out = float(np.mean(samples.token_num_responses)) if samples.token_num_responses else 0.0
    return samples.token_num_prompt * price.input_per_token + n * mean_out * price.output_per_token


def _has_costs(records: Sequence[Record], model: str) -> tuple[bool, bool]:
    """(every record has recorded costs for ``model``, some record has)."""
    flags = [bool(r.models[model].cost_usd) if model in r.models else False for r in records]
    return (all(flags) and bool(flags)), any(flags)


def cost_basis(records: Sequence[Record], models: Iterable[str]) -> dict[str, str]:
    """Per model, which cost the evaluation used: recorded, price x tokens, or a mix."""
    out = {}
    for m in models:
        every, some = _has_costs(records, m)
        out[m] = RECORDED if every else (MIXED if some else PRICED)
    return out


def fleet_yaml_example(models: Sequence[str], reference: str | None = None) -> str:
    """A fleet file pricing ``models``: what to write when LiteLLM's map does not know them."""
    lines = [f"reference: {reference or models[0]}   # the strong model the others are measured against",
             "models:"]
    for m in models:
        lines += [f"  - name: {m}",
                  "    price: {input_per_million: 0.20, output_per_million: 0.60}",
                  "    n: [1]          # allowed sample counts, e.g. [1, 3, 5]"]
    return "\n".join(lines)


def unpriced_message(unpriced: Sequence[str], all_models: Sequence[str], reference: str | None = None) -> str:
    """The error for models with neither a price nor a recorded cost: it says what to do."""
    example = fleet_yaml_example(list(all_models), reference)
    indented = "\n".join("  " + line for line in example.splitlines())
    return (
        f"No price for {', '.join(repr(m) for m in unpriced)} (not in LiteLLM's price map) and no "
        "recorded cost per answer. Pass --fleet FILE with their prices (your own figures; a fleet "
        "wins over LiteLLM's map), e.g. my_fleet.yaml:\n"
        f"{indented}\n"
        "or give each answer's real cost in the table: --columns "
        f"{unpriced[0]}.cost_usd=COLUMN. From Python: load_dataset(..., fleet=Fleet.from_yaml(...))."
    )


def resolve_prices(fleet: Fleet, records: Sequence[Record], models: Iterable[str]) -> dict[str, Price | None]:
    """Each model's price, or None for a model whose every answer has a recorded cost and that
    has no price. Raises :class:`PriceNotFoundError` listing every model that has neither."""
    out: dict[str, Price | None] = {}
    unpriced = []
    for m in dict.fromkeys(models):
        try:
            out[m] = fleet.model(m).resolved_price()
        except PriceNotFoundError:
            if _has_costs(records, m)[0]:
                out[m] = None
            else:
                unpriced.append(m)
    if unpriced:
        raise PriceNotFoundError(unpriced_message(unpriced, fleet.model_names, fleet.reference))
    return out


def reference_by_recorded_cost(records: Sequence[Record], models: Sequence[str]) -> str | None:
    """The model whose answers cost most on average (the default reference when some model has
    no price): None unless every model has recorded costs everywhere."""
    if not records or not all(_has_costs(records, m)[0] for m in models):
        return None
    means = {m: float(np.mean([np.mean(r.models[m].cost_usd or [0.0]) for r in records])) for m in models}
    return max(models, key=lambda m: means[m])


def with_reference(fleet: Fleet, records: Sequence[Record]) -> Fleet:
    """``fleet`` with a reference: as declared; else the dearest by price when every model is
    priced (:meth:`Fleet.reference_model`); else the model whose recorded answers cost most."""
    if fleet.reference is not None:
        return fleet
    try:
        fleet.prices()
        return fleet
    except PriceNotFoundError:
        ref = reference_by_recorded_cost(records, fleet.model_names)
        return fleet.model_copy(update={"reference": ref}) if ref is not None else fleet
