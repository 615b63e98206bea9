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


def main() -> None:
    """Entry point: run the app, turning project errors into exit status 2 with the message."""
    try:
        app()
    except AdaptiveRouterError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
