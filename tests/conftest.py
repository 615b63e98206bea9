"""Shared test settings: offline, local price map, and the data folder (skip when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]


def data_root() -> Path | None:
    env = os.environ.get("ADAPTIVE_ROUTER_DATA")
    for cand in ([Path(env)] if env else []) + [ROOT.parent / "shared" / "data"]:
        if cand.is_dir():
            return cand
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    """``@pytest.mark.gpu`` tests skip on a machine without CUDA (torch is imported only then)."""
    if item.get_closest_marker("gpu") is not None:
        import torch

        if not torch.cuda.is_available():
            pytest.skip("needs a CUDA GPU")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The routing data folder (../shared/data or $ADAPTIVE_ROUTER_DATA); skips when absent."""
    root = data_root()
    if root is None:
        pytest.skip("needs the routing data: ../shared/data or $ADAPTIVE_ROUTER_DATA is absent")
    return root


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="module")
def one_torch_thread():
    """SmolLM2-135M gains little from a second thread on a shared 2-core machine; restore after.
    Modules that run the local model use it: ``pytestmark = pytest.mark.usefixtures(...)``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


#: LiteLLM's module-level callback lists. In-process tests that register a hook or a strategy
#: add to them, and LiteLLM refuses new callbacks past 30 (MAX_CALLBACKS): restored per test.
_LITELLM_CALLBACK_LISTS = ("callbacks", "input_callback", "success_callback", "failure_callback",
                           "service_callback", "_async_input_callback", "_async_success_callback",
                           "_async_failure_callback")


@pytest.fixture(autouse=True)
def _restore_litellm_callbacks():
    """Each test starts with the callback lists it found (only when LiteLLM is already loaded:
    tests that never import it pay nothing)."""
    import sys

    litellm = sys.modules.get("litellm")
    saved = ({name: list(getattr(litellm, name)) for name in _LITELLM_CALLBACK_LISTS
              if isinstance(getattr(litellm, name, None), list)} if litellm is not None else {})
    yield
    for name, value in saved.items():
        setattr(litellm, name, value)


@pytest.fixture
def litellm_payload():
    """``await litellm_payload(prompt, answer)``: the StandardLoggingPayload LiteLLM itself builds
    for a mock SDK call, as JSON (what its logging sinks receive)."""
    import asyncio
    import json

    async def capture(prompt: str, answer: str, model: str = "gpt-4o-mini") -> dict:
        import litellm
        from litellm.integrations.custom_logger import CustomLogger

        captured: list[dict] = []

        async def on_success(self, kwargs, response_obj, start_time, end_time):
            # LiteLLM's logging worker is process-wide: events of earlier tests' calls can still
            # arrive here, so keep this call's payload only
            payload = kwargs["standard_logging_object"]
            if prompt in json.dumps(payload.get("messages"), default=str):
                captured.append(payload)

        # a class of its own per call: LiteLLM keeps one callback per logger class name
        logger = type(f"PayloadCapture{abs(hash(prompt))}", (CustomLogger,),
                      {"async_log_success_event": on_success})()
        litellm.callbacks = [logger]
        try:
            await litellm.acompletion(model=model, mock_response=answer,
                                      messages=[{"role": "user", "content": prompt}])
            for _ in range(100):  # success callbacks run after the response is returned
                if captured:
                    break
                await asyncio.sleep(0.05)
        finally:
            litellm.callbacks = []
        assert captured, "litellm did not deliver a standard logging payload"
        return json.loads(json.dumps(captured[0], default=str))

    return capture
