"""Verifiers: how much a cascade believes one step's answer (see :mod:`.base`).

- ``agreement``: the share of samples and earlier models giving the same final answer;
- a trained verifier folder (``adaptive-router train-verifier``): P(correct | answer features);
- a reward model folder (the proxy RM or a Hugging Face reward model), squashed to [0, 1];
- ``judge:<model>``: an LLM judge through LiteLLM.

:func:`load_verifier` turns any of these names into a :class:`Verifier`.
"""

from __future__ import annotations

from pathlib import Path

from adaptive_router.errors import ConfigError
from adaptive_router.verifiers.agreement import AgreementVerifier
from adaptive_router.verifiers.base import Evidence, Verifier

__all__ = ["AgreementVerifier", "Evidence", "Verifier", "load_verifier"]


def load_verifier(spec: str | Verifier) -> Verifier:
    """A verifier by name: ``agreement``, ``judge:<model>``, or a checkpoint folder (a trained
    verifier, or a reward model)."""
    if isinstance(spec, Verifier):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"verifier must be 'agreement', 'judge:<model>' or a folder, got {spec!r}")
    spec = spec.strip()
    if spec == "agreement":
        return AgreementVerifier()
    if spec.startswith("judge:"):
        from adaptive_router.verifiers.judge import JudgeVerifier

        return JudgeVerifier(spec.split(":", 1)[1])
    path = Path(spec).expanduser()
    if not path.is_dir():
        raise ConfigError(
            f"verifier {spec!r} is not 'agreement', 'judge:<model>', or an existing folder (a "
            "verifier from `adaptive-router train-verifier`, or a reward model)")
    import json

    try:
        kind = json.loads((path / "config.json").read_text(encoding="utf-8")).get("kind")
    except (OSError, ValueError):
        kind = None
    if kind == "verifier":
        from adaptive_router.verifiers.trained import TrainedVerifier

        return TrainedVerifier.from_pretrained(path)
    from adaptive_router.reward_models import load_reward_model
    from adaptive_router.verifiers.reward import RewardModelVerifier

    return RewardModelVerifier(load_reward_model(str(path)))
