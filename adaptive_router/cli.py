"""``adaptive-router``: the one front door.

Subcommands import training and integrations lazily, inside the subcommand, so that
``adaptive-router --help`` and ``route`` stay fast and the core never imports them at module level.
Errors of the project's hierarchy exit with status 2 and their message (no traceback).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from adaptive_router.errors import AdaptiveRouterError

app = typer.Typer(
    name="adaptive-router",
    help="Per-prompt model and sample-count routing with best-of-n and dollar cost.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Build routing data (Records) from prompts and a fleet.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _emit(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


def _knob(threshold: float | None, tradeoff: float | None, budget: float | None) -> dict[str, float] | None:
    given = {k: v for k, v in (("threshold", threshold), ("tradeoff", tradeoff),
                               ("budget_usd", budget)) if v is not None}
    if len(given) > 1:
        raise typer.BadParameter("give at most one of --threshold, --tradeoff, --budget")
    return given or None


@app.command()
def route(
    prompt: Annotated[str, typer.Argument(help="The prompt to route.")],
    fleet: Annotated[Path, typer.Option(help="Fleet YAML file (see examples/fleet.yaml).")],
    router: Annotated[str, typer.Option(help="A checkpoint folder, or a baseline: cheapest, "
                                              "strongest, random; 'default' = the bundled router.")] = "default",
    threshold: Annotated[float | None, typer.Option(help="Cheapest candidate predicted >= X.")] = None,
    tradeoff: Annotated[float | None, typer.Option(help="Maximise quality - X * relative cost.")] = None,
    budget: Annotated[float | None, typer.Option(help="Dollar budget per request.")] = None,
    execute: Annotated[bool, typer.Option(help="Also draw the samples and keep the best.")] = False,
    count_tokens: Annotated[bool, typer.Option(help="Count prompt tokens with each model's "
                                                    "tokenizer (else len/4).")] = True,
) -> None:
    """Decide which model and how many samples for PROMPT; print the decision as JSON."""
    from adaptive_router.cost import CostModel
    from adaptive_router.domain import Fleet
    from adaptive_router.engine import RoutingEngine
    from adaptive_router.policy import ThresholdPolicy, policy_from_knob
    from adaptive_router.routers import load_router

    fl = Fleet.from_yaml(fleet)
    knob = _knob(threshold, tradeoff, budget)
    policy = policy_from_knob(knob) if knob else ThresholdPolicy(0.5)
    r = load_router(router, fleet=fl)
    engine = RoutingEngine(fl, r, policy, CostModel(fl, count_tokens=count_tokens))
    decision = engine.decide(prompt)
    out: dict[str, Any] = decision.as_dict()
    if execute:
        from adaptive_router.execute import execute_decision

        out["execution"] = execute_decision(fl, decision, prompt)
    _emit(out)


# -- subcommands added by later layers go below; each imports its implementation lazily ------


@data_app.command("build")
def data_build(
    prompts: Annotated[Path, typer.Option(help="Prompts: JSONL (prompt, optional id/answer/task) "
                                               "or a text file, one prompt per line.")],
    fleet: Annotated[Path, typer.Option(help="Fleet YAML: the models to sample (and how).")],
    out: Annotated[Path, typer.Option(help="Records JSONL to append to (resumable).")],
    n: Annotated[int, typer.Option(help="Samples per prompt and model.")] = 8,
    scorer: Annotated[str, typer.Option(help="'answer-checker' (needs an answer per prompt) or a "
                                             "reward-model folder.")] = "answer-checker",
    max_tokens: Annotated[int | None, typer.Option(help="Output tokens per sample.")] = None,
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature.")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N prompts.")] = None,
) -> None:
    """Sample every fleet model N times per prompt, score the samples, append Records."""
    from adaptive_router.domain import Fleet
    from adaptive_router.training.data_build import build_records, make_scorer, read_prompts

    items = read_prompts(prompts)[:limit] if limit else read_prompts(prompts)
    gen = {k: v for k, v in (("max_tokens", max_tokens), ("temperature", temperature)) if v is not None}
    counts = build_records(items, Fleet.from_yaml(fleet), n, make_scorer(scorer), out,
                           source=str(prompts), **gen)
    _emit({**counts, "out": str(out)})


@app.command("train-reward")
def train_reward(
    out: Annotated[Path, typer.Option(help="Folder to save the proxy reward model in.")],
    data: Annotated[str, typer.Option(help="A data set name (e.g. champ) or a records JSONL.")] = "champ",
    score: Annotated[str | None, typer.Option(help="The oracle score ranking the pairs "
                                                   "(default: the data set's quality score).")] = None,
    extra_pairs: Annotated[int, typer.Option(help="Random (better, worse) pairs per prompt on top "
                                                  "of BEST-Route's two.")] = 4,
    held_out: Annotated[float, typer.Option(help="Share of prompts held out for the accuracy.")] = 0.2,
    epochs: Annotated[int, typer.Option(help="Maximum epochs (early stopping).")] = 300,
    encoder: Annotated[str, typer.Option(help="Backbone sentence encoder (folder or 'minilm').")] = "minilm",
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Train the proxy reward model (Bradley-Terry on oracle-ranked pairs); print its report."""
    from adaptive_router.training.reward_training import train_reward_model

    if Path(data).suffix == ".jsonl":
        from adaptive_router.records import read_records

        records, quality = read_records(data), score
        if quality is None:
            raise typer.BadParameter("--score is required with a records file (e.g. correct)")
    else:
        from adaptive_router.training.loaders import load_dataset

        ds = load_dataset(data)
        records, quality = ds.records, score or ds.quality_score
    model = train_reward_model(records, quality, out_dir=out, extra_pairs=extra_pairs,
                               held_out=held_out, epochs=epochs, encoder=encoder, seed=seed)
    _emit({"out": str(out), **model.metrics})


def _int_list(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise typer.BadParameter(f"expected sample counts such as 1,3,5, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise typer.BadParameter(f"sample counts must be positive integers, got {text!r}")
    return values


@app.command("eval")
def eval_routers(
    data: Annotated[str, typer.Option(help="routellm-mmlu, routellm-gsm8k, routellm-mtbench, "
                                           "llmrouter, champ, or a .jsonl/.csv path.")],
    routers: Annotated[str, typer.Option(help="Comma-separated: random, oracle, cheapest, strongest, "
                                              "a checkpoint folder, or a trainable router name.")],
    out: Annotated[Path, typer.Option(help="Folder for results.json and the plots.")],
    data_dir: Annotated[Path | None, typer.Option(help="Data root (default: $ADAPTIVE_ROUTER_DATA, "
                                                       "else download into a cache).")] = None,
    split: Annotated[str, typer.Option(help="test, val, train, all, or auto (all for baselines "
                                            "only, else the decontaminated test split).")] = "auto",
    seed: Annotated[int, typer.Option(help="Split and training seed.")] = 0,
    n: Annotated[str, typer.Option(help="Sample counts for the non-reference models, e.g. 1,3,5 "
                                        "(best-of-n candidates).")] = "1",
    selector_score: Annotated[str | None, typer.Option(help="Record score that picks the best of n "
                                                            "(default: a uniformly random sample).")] = None,
    checkpoints: Annotated[Path | None, typer.Option(help="Folder of trained routers: <DIR>/<name> "
                                                          "is loaded, or trained and saved there.")] = None,
    knob: Annotated[str, typer.Option(help="The policy knob to sweep: threshold or tradeoff.")] = "threshold",
    decontaminate: Annotated[bool, typer.Option(help="Drop test prompts with cosine >= 0.95 to a "
                                                     "training prompt.")] = True,
) -> None:
    """Evaluate routers on recorded data: print a table, write results.json and quality_cost.png."""
    from adaptive_router.training.evaluate import format_table, run_evaluation

    names = [r.strip() for r in routers.split(",") if r.strip()]
    if not names:
        raise typer.BadParameter("give at least one router, e.g. --routers random,oracle")
    results = run_evaluation(data, names, out=str(out), data_dir=str(data_dir) if data_dir else None,
                             split=split, seed=seed, n=_int_list(n), selector_score=selector_score,
                             checkpoints=str(checkpoints) if checkpoints else None, knob=knob,
                             decontaminate=decontaminate)
    typer.echo(f"{results['data']}: {results['n_prompts']} prompts ({results['split']} split), "
               f"quality = {results['quality_score']}")
    typer.echo(format_table(results))
    for note in results["notes"]:
        typer.echo(f"note: {note}")
    typer.echo(f"wrote {out / 'results.json'} and {out / 'quality_cost.png'}")


@data_app.command("export")
def data_export(
    data: Annotated[str, typer.Option(help="A data set name (routellm-mmlu, ..., champ) or a path.")],
    out: Annotated[Path, typer.Option(help="Records JSONL to write.")],
    split: Annotated[str, typer.Option(help="all, train, val or test (decontaminated).")] = "all",
    data_dir: Annotated[Path | None, typer.Option(help="Data root (default: $ADAPTIVE_ROUTER_DATA).")] = None,
    seed: Annotated[int, typer.Option(help="Split seed.")] = 0,
) -> None:
    """Write a data set's Records as JSONL (e.g. for the LiteLLM replay provider)."""
    from adaptive_router.records import write_records
    from adaptive_router.training.loaders import load_dataset

    ds = load_dataset(data, data_dir=data_dir)
    if split == "all":
        records = ds.records
    else:
        parts = dict(zip(("train", "val", "test"), ds.splits(seed=seed), strict=True))
        if split not in parts:
            raise typer.BadParameter(f"--split {split!r}: use all, train, val or test")
        records = parts[split]
    count = write_records(records, out)
    _emit({"data": ds.name, "split": split, "records": count, "models": ds.models,
           "quality_score": ds.quality_score, "out": str(out)})


def main() -> None:
    """Entry point: run the app, turning project errors into exit status 2 with the message."""
    try:
        app()
    except AdaptiveRouterError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
