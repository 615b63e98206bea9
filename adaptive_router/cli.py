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


def _package_version() -> str:
    """The installed distribution's version (the one pip reports, so a bug report names the
    build actually running), else the source tree's when the package is imported uninstalled."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("adaptive-router")
    except PackageNotFoundError:
        from adaptive_router import __version__

        return __version__


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"adaptive-router {_package_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version_callback, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Per-prompt model and sample-count routing with best-of-n and dollar cost."""


def _emit(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


#: ``--fleet`` of the commands that read recorded data: the user's prices win.
_FLEET_HELP = ("Fleet YAML (see examples/fleet.yaml): prices, reference model and allowed n. It wins "
               "over the data's and LiteLLM's prices; needed for models LiteLLM's map does not know "
               "(unless the table records each answer's cost: --columns MODEL.cost_usd=COLUMN).")
_COLUMNS_HELP = ("For a CSV/JSONL table: prompt=COL,MODEL=COL,MODEL.response=COL,MODEL.output_tokens=COL,"
                 "MODEL.cost_usd=COL (each answer's real cost; wins over price x tokens),task=COL "
                 "(split key and domain labels),quality=NAME,reference=MODEL.")


def _load_fleet(path: Path | None) -> Any:
    from adaptive_router.domain import Fleet

    return Fleet.from_yaml(path) if path is not None else None


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
    epochs: Annotated[int, typer.Option(help="Maximum epochs (early stopping).")] = 200,
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


#: Router names before the registry went kebab-case everywhere; still accepted on the command
#: line so existing scripts keep working (the library itself knows only the new names).
_OLD_ROUTER_NAMES = {"sw_ranking": "sw-ranking", "causal_llm": "causal-llm"}


def _router_name(name: str) -> str:
    """``name`` with an old snake_case router name replaced by its kebab-case one (with a note
    on stderr, so scripts can be updated before the old spelling goes)."""
    new = _OLD_ROUTER_NAMES.get(name)
    if new is None or Path(name).exists():  # a checkpoint folder of that name is meant as a folder
        return name
    typer.echo(f"note: router {name!r} is now called {new!r}; the old name still works here", err=True)
    return new


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
    n: Annotated[str | None, typer.Option(help="Sample counts for the non-reference models, e.g. 1,3,5 "
                                               "(best-of-n candidates; default: the --fleet's n, "
                                               "else 1).")] = None,
    selector_score: Annotated[str | None, typer.Option(help="Record score that picks the best of n "
                                                            "(default: a uniformly random sample).")] = None,
    checkpoints: Annotated[Path | None, typer.Option(help="Folder of trained routers: <DIR>/<name> "
                                                          "is loaded, or trained and saved there.")] = None,
    knob: Annotated[str, typer.Option(help="The policy knob to sweep: threshold, tradeoff, or best (both, "
                                           "reporting the family that saves more at the best single "
                                           "model's quality).")] = "best",
    decontaminate: Annotated[bool, typer.Option(help="Drop test prompts with cosine >= 0.95 to a "
                                                     "training prompt.")] = True,
    columns: Annotated[str | None, typer.Option(help=_COLUMNS_HELP)] = None,
    fleet: Annotated[Path | None, typer.Option(help=_FLEET_HELP)] = None,
    cascade: Annotated[list[str] | None, typer.Option(help="A cascade to replay on the recorded answers "
                                                          "(repeatable): auto (cheapest model, then the "
                                                          "reference), a chain such as 'weak#3>strong#1', "
                                                          "or router=NAME (the steps a router proposes).")] = None,
    verifier: Annotated[str, typer.Option(help="Verifier(s) of the cascades, comma-separated: agreement, "
                                              "a folder from train-verifier (or a reward model), "
                                              "judge:<model>.")] = "agreement",
) -> None:
    """Evaluate routers (and cascades) on recorded data: print a table, write results.json and
    quality_cost.png."""
    from adaptive_router.training.evaluate import format_table, run_evaluation
    from adaptive_router.training.loaders.generic import parse_column_mapping

    names = [_router_name(r.strip()) for r in routers.split(",") if r.strip()]
    if not names:
        raise typer.BadParameter("give at least one router, e.g. --routers random,oracle")
    results = run_evaluation(data, names, out=str(out), data_dir=str(data_dir) if data_dir else None,
                             split=split, seed=seed, n=_int_list(n) if n else None,
                             selector_score=selector_score, fleet=_load_fleet(fleet),
                             checkpoints=str(checkpoints) if checkpoints else None, knob=knob,
                             decontaminate=decontaminate, load_kwargs=parse_column_mapping(columns),
                             cascades=list(cascade or []),
                             verifiers=[v.strip() for v in verifier.split(",") if v.strip()])
    dropped = results.get("dropped_contaminated_test_prompts")
    typer.echo(f"{results['data']}: {results['n_prompts']} prompts ({results['split']} split"
               + (f", {dropped} near-duplicates of training prompts dropped" if dropped is not None else "")
               + f"), quality = {results['quality_score']}")
    typer.echo(format_table(results))
    for note in results["notes"]:
        typer.echo(f"note: {note}")
    typer.echo(f"wrote {out / 'results.json'} and {out / 'quality_cost.png'}")


@app.command("train-verifier")
def train_verifier_cmd(
    data: Annotated[str, typer.Option(help="A data set with responses (routellm-gsm8k, champ) or a "
                                           ".jsonl/.csv path with MODEL.response columns.")],
    out: Annotated[Path, typer.Option(help="Folder for the verifier (config.json + model.safetensors) "
                                           "and training_report.{json,md}.")],
    data_dir: Annotated[Path | None, typer.Option(help="Data root (default: $ADAPTIVE_ROUTER_DATA).")] = None,
    n: Annotated[str, typer.Option(help="Sample counts whose steps become training pairs (capped at "
                                        "what the records hold).")] = "1,3,5",
    seed: Annotated[int, typer.Option(help="Split seed (the same splits as train and eval).")] = 0,
    columns: Annotated[str | None, typer.Option(help="For a CSV/JSONL table: prompt=COL,MODEL=COL,"
                                                     "MODEL.response=COL,quality=NAME.")] = None,
    router: Annotated[str | None, typer.Option(help="A trainable router (e.g. linear-probe) whose "
                                                    "prompt-only prediction the verifier also weighs "
                                                    "(out-of-fold on the train split); evaluate with "
                                                    "--cascade router=NAME.")] = None,
    fleet: Annotated[Path | None, typer.Option(help=_FLEET_HELP)] = None,
) -> None:
    """Train the cascade verifier P(correct | prompt, answer, agreement, prior) on the train split,
    calibrate it on validation, report AUC on test."""
    from adaptive_router.training.loaders import load_dataset
    from adaptive_router.training.loaders.generic import parse_column_mapping
    from adaptive_router.training.verifier_training import train_verifier

    ds = load_dataset(data, data_dir=data_dir, fleet=_load_fleet(fleet), **parse_column_mapping(columns))
    train, val, test = ds.splits(seed=seed)
    priors = None
    if router:
        router = _router_name(router)
        from adaptive_router.training.verifier_training import out_of_fold_priors

        priors = out_of_fold_priors(router, train, val, test, ds.fleet.candidate_keys, ds.quality_score,
                                    seed=seed)
    model = train_verifier(train, val, ds.fleet, ds.quality_score, test=test, n=_int_list(n), seed=seed,
                           out_dir=out, data=ds.name, priors=priors, router=router,
                           command="adaptive-router " + " ".join(sys.argv[1:]))
    rep = model.report
    _emit({"out": str(out), "heads": list(model.heads), "l2": rep["l2"],
           **{f"{k}_auc": rep[k]["auc"] for k in ("train", "val", "test") if k in rep},
           "report": str(out / "training_report.md")})


@data_app.command("export")
def data_export(
    data: Annotated[str, typer.Option(help="A data set name (routellm-mmlu, ..., champ) or a path.")],
    out: Annotated[Path, typer.Option(help="Records JSONL to write.")],
    split: Annotated[str, typer.Option(help="all, train, val or test (decontaminated).")] = "all",
    data_dir: Annotated[Path | None, typer.Option(help="Data root (default: $ADAPTIVE_ROUTER_DATA).")] = None,
    seed: Annotated[int, typer.Option(help="Split seed.")] = 0,
    columns: Annotated[str | None, typer.Option(help=_COLUMNS_HELP)] = None,
    fleet: Annotated[Path | None, typer.Option(help="Fleet YAML: export only its models (its "
                                                    "reference and prices are reported).")] = None,
) -> None:
    """Write a data set's Records as JSONL (e.g. for the LiteLLM replay provider); recorded
    answer costs (cost_usd) are kept."""
    from adaptive_router.records import write_records
    from adaptive_router.training.loaders import load_dataset
    from adaptive_router.training.loaders.generic import parse_column_mapping

    ds = load_dataset(data, data_dir=data_dir, fleet=_load_fleet(fleet), **parse_column_mapping(columns))
    if split == "all":
        records = ds.records
    else:
        parts = dict(zip(("train", "val", "test"), ds.splits(seed=seed), strict=True))
        if split not in parts:
            raise typer.BadParameter(f"--split {split!r}: use all, train, val or test")
        records = parts[split]
    count = write_records(records, out)
    from adaptive_router.training.recorded_cost import cost_basis

    _emit({"data": ds.name, "split": split, "records": count, "models": ds.models,
           "quality_score": ds.quality_score, "cost_basis": cost_basis(records, ds.models),
           **({"reference": ds.reference} if fleet else {}), "out": str(out)})


@app.command("train")
def train_cmd(
    router: Annotated[str, typer.Option(help="Router to train: linear-probe, mf, sw-ranking, bert, "
                                             "causal-llm, hybrid-det, hybrid-prob, hybrid-trans, ...")],
    data: Annotated[str, typer.Option(help="Data set name(s) or path(s), comma-separated "
                                           "(e.g. routellm-mmlu or routellm-mmlu,routellm-gsm8k).")],
    out: Annotated[Path, typer.Option(help="Folder for the router and its training report.")],
    data_dir: Annotated[Path | None, typer.Option(help="Data root (default: $ADAPTIVE_ROUTER_DATA).")] = None,
    seed: Annotated[int, typer.Option(help="Split and training seed.")] = 0,
    val: Annotated[float, typer.Option(help="Validation fraction (early stopping).")] = 0.1,
    test: Annotated[float, typer.Option(help="Test fraction (held out, evaluated after training).")] = 0.2,
    param: Annotated[list[str] | None, typer.Option(help="Trainer setting KEY=VALUE (repeatable), "
                                                         "e.g. --param max_steps=200.")] = None,
    generic_roles: Annotated[bool, typer.Option(help="Rename the two models strong/weak so the router "
                                                     "serves any fleet (the bundled default).")] = False,
    evaluate: Annotated[bool, typer.Option(help="Evaluate on the test split into the report.")] = True,
    max_records: Annotated[int | None, typer.Option(help="Use a seeded random subsample of at most this "
                                                         "many records per data set.")] = None,
    fleet: Annotated[Path | None, typer.Option(help=_FLEET_HELP + " Its n lists become the candidates.")] = None,
    columns: Annotated[str | None, typer.Option(help=_COLUMNS_HELP)] = None,
) -> None:
    """Train a router on the seeded train split; save it with training_report.{json,md}."""
    from adaptive_router.training.loaders.generic import parse_column_mapping
    from adaptive_router.training.train import is_main_process, parse_params, train_on_datasets

    router = _router_name(router)
    names = [d.strip() for d in data.split(",") if d.strip()]
    report = train_on_datasets(router, names, out, data_dir=str(data_dir) if data_dir else None, seed=seed,
                               val=val, test=test, roles=generic_roles, evaluate=evaluate,
                               command="adaptive-router " + " ".join(sys.argv[1:]), max_records=max_records,
                               fleet=_load_fleet(fleet), load_kwargs=parse_column_mapping(columns),
                               **parse_params(param or []))
    if not is_main_process():  # under accelerate/torchrun rank 0 alone reports (and saved)
        return
    _emit({"router": router, "out": str(out), "train_seconds": report.get("train_seconds"),
           "best_val_loss": report.get("best_val_loss"), "cost_basis": report.get("cost_basis"),
           "test_metrics": report.get("test_metrics")})


@app.command("calibrate")
def calibrate_cmd(
    router: Annotated[str, typer.Option(help="A checkpoint folder, or 'default'.")],
    prompts: Annotated[Path, typer.Option(help="Your prompts: text (one per line) or JSONL with "
                                               "'prompt' / 'messages'.")],
    strong_share: Annotated[float, typer.Option(help="Share of prompts to send to the strong model.")],
    fleet: Annotated[Path | None, typer.Option(help="Fleet YAML (prices the candidates; needed for "
                                                    "routers without a reference candidate, and "
                                                    "for models LiteLLM's price map does not know).")] = None,
) -> None:
    """The threshold that sends --strong-share of your prompts to the strong (dearest) candidate."""
    from adaptive_router.calibrate import calibrate_router, read_prompts
    from adaptive_router.domain import Fleet
    from adaptive_router.routers import load_router

    fl = Fleet.from_yaml(fleet) if fleet else None
    r = load_router(router, fleet=fl)
    result = calibrate_router(r, read_prompts(prompts), strong_share, fleet=fl)
    result["use"] = f"--threshold {result['threshold']:.6g}"
    _emit(result)


@app.command("retrain")
def retrain_cmd(
    logs: Annotated[list[Path], typer.Option(help="Traffic log (rotated files are read too) or a "
                                                  "file of LiteLLM StandardLoggingPayload JSON "
                                                  "lines; repeat for several.")],
    base: Annotated[str, typer.Option(help="The router serving today: a checkpoint folder, any "
                                           "name the plugin's router: accepts (default, "
                                           "cheapest...), or none (learn from the log alone).")],
    out: Annotated[Path, typer.Option(help="Output folder: report.md, quality_cost.png, "
                                           "retrain.json, candidate/, router/.")],
    label_source: Annotated[str, typer.Option(help="auto (feedback, else reward score, else "
                                                   "judge), feedback, reward or judge.")] = "auto",
    feedback: Annotated[Path | None, typer.Option(help="JSON lines {request_id, score|correct|"
                                                       "rating|thumbs} joined onto the log.")] = None,
    judge_model: Annotated[str | None, typer.Option(help="LLM judge for unlabelled requests, any "
                                                         "model litellm.completion reaches (e.g. "
                                                         "local/smollm2-135m-instruct).")] = None,
    judge_api_base: Annotated[str | None, typer.Option(help="API base of the judge (e.g. a proxy).")] = None,
    holdout: Annotated[float, typer.Option(help="Share of prompts held out for evaluation.")] = 0.3,
    estimator: Annotated[str, typer.Option(help="Decisive off-policy estimator: dr, ips, snips.")] = "dr",
    cost_weight: Annotated[float, typer.Option(help="Utility = quality - W x cost / (dearest "
                                                    "candidate's mean cost).")] = 0.5,
    min_z: Annotated[float, typer.Option(help="Promote only if the utility gain is >= this many "
                                              "standard errors.")] = 1.0,
    threshold: Annotated[float | None, typer.Option(help="Knob for logged requests whose decision "
                                                         "names no policy.")] = None,
    promote_to: Annotated[Path | None, typer.Option(help="Also copy the router here when promoted "
                                                         "(e.g. the proxy's router folder).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the prompt split.")] = 0,
    fleet: Annotated[Path | None, typer.Option(help="The plugin's fleet file; without it the "
                                                    "candidates and expected costs the log lines "
                                                    "carry.")] = None,
    method: Annotated[str, typer.Option(help="auto, fine-tune (a base that predicts every "
                                             "candidate) or heads (a learned head per fleet "
                                             "candidate).")] = "auto",
    encoder: Annotated[str, typer.Option(help="Prompt encoder of new fleet heads.")] = "minilm",
) -> None:
    """Retrain a router on served traffic; promote it only if it is better (off-policy estimate).

    Candidates the base router does not know (the default's generic roles, a model added to the
    fleet) get heads learned from the logged requests."""
    from adaptive_router.training.retrain.job import retrain
    from adaptive_router.training.retrain.labels import JudgeLabeler

    judge = None
    if judge_model:
        if judge_model.split("/", 1)[0] in ("local", "replay"):
            import litellm

            from adaptive_router.integrations.litellm_plugin.providers import provider_map

            litellm.custom_provider_map = provider_map()
            litellm.utils.custom_llm_setup()
        judge = JudgeLabeler(judge_model, api_base=judge_api_base)
    res = retrain(logs, base, out, label_source=label_source, feedback=feedback, judge=judge,
                  holdout=holdout, estimator=estimator, cost_weight=cost_weight, min_z=min_z,
                  default_threshold=threshold, promote_to=promote_to, seed=seed, fleet=fleet,
                  method=method, encoder=encoder)
    cmp = res.summary["comparison"]
    heads = res.summary["heads"].get("heads", [])
    _emit({"promoted": res.promoted, "method": res.summary["method"], "report": str(res.report_path),
           "plot": str(res.plot_path), "router": str(res.router_dir) if res.router_dir else None,
           "candidate": str(res.candidate_dir),
           "heads": {h["candidate"]: {"served": h["served"], "predicted_mean": h["predicted_mean"]}
                     for h in heads},
           "usable_requests": res.summary["usable"], "held_out": res.summary["held_out"],
           "quality_dr": {k: cmp["quality"]["dr"][k]["value"] for k in ("old", "new")},
           "cost_usd_dr": {k: cmp["cost_usd"]["dr"][k]["value"] for k in ("old", "new")},
           "utility_difference": cmp["utility"][estimator]["difference"],
           "utility_std_error": cmp["utility"][estimator]["std_error"]})


@app.command("report")
def report_cmd(
    logs: Annotated[list[Path], typer.Option(help="Traffic log (rotated files are read too) or a file "
                                                  "of LiteLLM StandardLoggingPayload JSON lines; repeat "
                                                  "for several replicas.")],
    out: Annotated[Path, typer.Option(help="Folder for report.md, report.json and savings.png.")],
    feedback: Annotated[list[Path] | None, typer.Option(help="JSON lines {request_id, score|correct|"
                                                             "rating|thumbs} joined onto the requests "
                                                             "(repeatable).")] = None,
    reference: Annotated[str | None, typer.Option(help="The reference model (default: the fleet's, "
                                                       "else the dearest single-sample candidate of "
                                                       "each decision).")] = None,
    fleet: Annotated[Path | None, typer.Option(help="The plugin's fleet file: its reference model.")] = None,
) -> None:
    """Spend against always calling the reference model, by day and alias, with quality where
    feedback exists; writes a PNG of cumulative spend."""
    from adaptive_router.training.savings_report import savings_report

    if reference is None and fleet is not None:
        reference = _load_fleet(fleet).reference_model()
    summary = savings_report(logs, out, feedback=list(feedback or []), reference=reference)
    typer.echo(summary["text"])
    typer.echo("wrote " + ", ".join(summary["files"]))


def main() -> None:
    """Entry point: run the app, turning project errors into exit status 2 with the message."""
    from adaptive_router.errors import PriceNotFoundError

    try:
        app()
    except PriceNotFoundError as exc:
        message = str(exc)
        if "--fleet" not in message:  # the core's message speaks of a fleet file; name the flag
            given = next((a.split("=", 1)[-1] if "=" in a else sys.argv[i + 2]
                          for i, a in enumerate(sys.argv[1:]) if a.split("=")[0] == "--fleet"
                          and ("=" in a or i + 2 < len(sys.argv))), None)
            message += (f"\nAdd the price to the model in your --fleet file {given}." if given else
                        "\nOn the command line: pass --fleet FILE (a fleet YAML as above, see "
                        "examples/fleet.yaml) to eval, train, data export, calibrate or route.")
        typer.echo(f"error: {message}", err=True)
        sys.exit(2)
    except AdaptiveRouterError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
