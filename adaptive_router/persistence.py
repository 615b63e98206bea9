"""Safe persistence: ``config.json`` + ``model.safetensors`` in a folder, never pickle.

The layout follows Hugging Face / sentence-transformers: ``save_pretrained(dir)`` writes a JSON
config (with ``format`` and ``format_version``) and the tensors in safetensors; loading reads
JSON and safetensors only, so loading a checkpoint can never execute code. A folder holding a
pickle (``*.pkl``, ``*.pt``, ``*.bin``, ``*.pickle``) and no safetensors is refused by name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_router.errors import CheckpointError

FORMAT = "adaptive-router"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".pt", ".pth", ".bin", ".joblib", ".ckpt")
_PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05", b"PK\x03\x04")


def save_checkpoint(
    directory: str | Path, kind: str, config: dict[str, Any], tensors: dict[str, np.ndarray]
) -> Path:
    """Write ``config.json`` and ``model.safetensors`` under ``directory`` (created)."""
    from safetensors.numpy import save_file

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    full = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind, **config}
    tmp = d / (CONFIG_NAME + ".tmp")
    tmp.write_text(json.dumps(full, indent=2, sort_keys=True, default=json_default), encoding="utf-8")
    os.replace(tmp, d / CONFIG_NAME)
    arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    if not arrays:  # safetensors needs a file either way; keep the layout uniform
        arrays = {"__empty__": np.zeros(1, dtype=np.float32)}
    save_file(arrays, str(d / WEIGHTS_NAME), metadata={"format": FORMAT})
    return d


def json_default(o: Any) -> Any:
    """``json.dumps(default=...)`` for what configs, reports and results hold: numpy scalars and
    arrays, and paths. Anything else is a TypeError (a bug to see, not to stringify)."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def json_default_or_str(o: Any) -> Any:
    """:func:`json_default`, falling back to ``str(o)``: for human-facing reports, where an
    odd object should still print rather than fail the run that wrote it."""
    try:
        return json_default(o)
    except TypeError:
        return str(o)


def load_config(directory: str | Path, expect_kind: str | None = None) -> dict[str, Any]:
    """Read and check ``config.json``: the format, its version, and (optionally) the kind."""
    d = Path(directory)
    if d.is_file():
        _refuse_if_pickle(d)
        raise CheckpointError(
            f"{d} is a file; a checkpoint is a folder with {CONFIG_NAME} and {WEIGHTS_NAME} "
            "(written by save_pretrained)"
        )
    if not d.is_dir():
        raise CheckpointError(f"checkpoint folder {d} does not exist")
    cfg_path = d / CONFIG_NAME
    if not cfg_path.exists():
        pickles = [p.name for p in d.iterdir() if p.suffix in _PICKLE_SUFFIXES]
        if pickles:
            raise CheckpointError(
                f"{d} holds {pickles} but no {CONFIG_NAME}: pickled checkpoints are refused "
                "because loading them can run arbitrary code. Re-save the model with "
                "save_pretrained() (config.json + model.safetensors)."
            )
        raise CheckpointError(f"{d} has no {CONFIG_NAME}; is it a folder written by save_pretrained?")
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{cfg_path} is not valid JSON ({exc}); re-save the checkpoint") from None
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        raise CheckpointError(
            f"{cfg_path} is not an adaptive-router checkpoint (missing \"format\": \"{FORMAT}\")"
        )
    version = cfg.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{cfg_path} has format_version {version!r}; this adaptive-router reads up to "
            f"{FORMAT_VERSION}: upgrade adaptive-router"
        )
    if expect_kind is not None and cfg.get("kind") != expect_kind:
        raise CheckpointError(
            f"{d} holds a {cfg.get('kind')!r} checkpoint, not a {expect_kind!r} one"
        )
    return cfg


def load_tensors(directory: str | Path) -> dict[str, np.ndarray]:
    """Read ``model.safetensors`` as numpy arrays (no code runs while loading)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(directory) / WEIGHTS_NAME
    if not path.exists():
        raise CheckpointError(f"{path} is missing; re-save the checkpoint with save_pretrained()")
    _refuse_if_pickle(path)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a valid safetensors file ({exc})") from None
    tensors.pop("__empty__", None)
    return tensors


def _refuse_if_pickle(path: Path) -> None:
    with path.open("rb") as fh:
        head = fh.read(4)
    if path.suffix in _PICKLE_SUFFIXES or any(head.startswith(m) for m in _PICKLE_MAGIC):
        raise CheckpointError(
            f"{path} looks like a pickle/torch.save file; adaptive-router never unpickles files "
            "(it can run arbitrary code). Save with save_pretrained() (safetensors) instead."
        )
