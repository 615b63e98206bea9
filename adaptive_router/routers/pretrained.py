"""The bundled default router: ``adaptive-router route`` uses it when no ``--router`` is given.

It is Hybrid LLM's router with probabilistic targets (an MLP, ~400 kB, over the static
embeddings distilled from MiniLM -- ``minilm-static``, see :mod:`adaptive_router.static_encoder`:
a decision costs well under a millisecond instead of a ~18 ms transformer pass) trained on
RouteLLM's correctness data — the seeded train splits of MMLU and GSM8K —
with *generic roles*: its candidates are ``strong#1`` and
``weak#1``, and it predicts P(the weak model's answer is at least as good as the strong one's).
Bound to a fleet (``load_router("default", fleet=...)``), the fleet's reference model plays
strong and every other candidate weak (see
:class:`~adaptive_router.routers.embedding.FleetRoleRouter`): a threshold policy then sends a
prompt that looks easy to the cheapest candidate and a hard one to the reference.

Rebuild it with the command in ``adaptive_router/pretrained/default/training_report.md``.

``default-minilm`` is the same router over MiniLM's own embeddings: a little better on held-out
data (``python benchmarks/encoder_quality.py``) at the cost of the transformer pass per prompt.
"""

from __future__ import annotations

from pathlib import Path

from adaptive_router.errors import CheckpointError

#: The command that (re)builds the bundled default router.
DEFAULT_ROUTER_COMMAND = (
    "adaptive-router train --router hybrid-prob --data routellm-mmlu,routellm-gsm8k --generic-roles "
    "--seed 0 --param encoder=minilm-static --out adaptive_router/pretrained/default"
)
#: Bundled router names -> folder under ``adaptive_router/pretrained``.
BUNDLED_ROUTERS = {"default": "default", "default-minilm": "default-minilm"}


def default_router_path(name: str = "default") -> Path:
    """The folder of a committed bundled router (inside the installed package)."""
    path = Path(__file__).resolve().parent.parent / "pretrained" / BUNDLED_ROUTERS[name]
    if not (path / "config.json").exists():
        raise CheckpointError(
            f"the bundled default router is missing from {path}; reinstall adaptive-router or "
            f"rebuild it with: {DEFAULT_ROUTER_COMMAND}"
        )
    return path
