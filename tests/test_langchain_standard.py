"""langchain-tests' standard suites for ChatAdaptiveRouter (and ChatLocalModel's unit suite).

The integration suite really runs: the router routes between two deployments of the local
SmolLM2-135M (a greedy one priced as a "large" model, a sampled one with best-of-3 priced as a
"small" one) with a real router (the ``strongest`` baseline) and real generation on the CPU, with
few new tokens per call so the suite stays short.

Declared unsupported (the local models lack them): tool calling, structured output, JSON mode,
image / PDF / audio inputs. The router itself forwards tools to chosen models that support them
(see test_langchain_chat.py); the unit suite therefore checks its ``bind_tools`` and
``with_structured_output`` wiring.

Two integration classes: one whose decisions are n = 1 (the chosen model's tokens stream through),
run in full by default, and one whose decisions are best-of-3 (the best sample is emitted once
chosen), run in full by ``make test-slow``; three of its standard tests (invoke, astream, streamed
usage) run by default through :class:`TestBestOfNStandardSubset`.
"""

from __future__ import annotations

import pytest
from adaptive_router.integrations.langchain_plugin.chat import ChatAdaptiveRouter
from adaptive_router.integrations.langchain_plugin.local import ChatLocalModel
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from adaptive_router.domain import Fleet

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MAX_TOKENS = 8


def local_fleet(reference: str = "large") -> Fleet:
    """Two deployments of the local model, priced explicitly as a small and a large model."""
    return Fleet.from_dict({
        "reference": reference,
        "selector": "first",
        "models": [
            {"name": "small", "n": [1, 3], "expected_output_tokens": MAX_TOKENS,
             "price": {"input_per_million": 0.10, "output_per_million": 0.40}},
            {"name": "large", "n": [1], "expected_output_tokens": MAX_TOKENS,
             "price": {"input_per_million": 2.50, "output_per_million": 10.00}},
        ],
    })


def local_models() -> dict[str, ChatLocalModel]:
    return {"small": ChatLocalModel(temperature=0.7, seed=0),
            "large": ChatLocalModel(temperature=0.0)}


class _Unsupported:
    """Features SmolLM2-135M does not have, declared so the suites skip them."""

    @property
    def has_tool_calling(self) -> bool:
        return False

    @property
    def has_structured_output(self) -> bool:
        return False

    @property
    def supports_json_mode(self) -> bool:
        return False

    @property
    def supports_image_inputs(self) -> bool:
        return False

    @property
    def supports_image_urls(self) -> bool:
        return False

    @property
    def supports_pdf_inputs(self) -> bool:
        return False

    @property
    def supports_audio_inputs(self) -> bool:
        return False

    @property
    def supports_image_tool_message(self) -> bool:
        return False

    @property
    def supports_pdf_tool_message(self) -> bool:
        return False

    @property
    def supports_anthropic_inputs(self) -> bool:
        return False


class TestChatAdaptiveRouterUnit(ChatModelUnitTests):
    """The unit suite: construction, standard params, tool binding and structured output wiring."""

    @property
    def chat_model_class(self) -> type[ChatAdaptiveRouter]:
        return ChatAdaptiveRouter

    @property
    def chat_model_params(self) -> dict:
        return {"fleet": local_fleet(), "models": local_models(), "router": "strongest"}

    @property
    def model_override_value(self) -> str:
        return "small"


class TestChatLocalModelUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatLocalModel]:
        return ChatLocalModel

    @property
    def chat_model_params(self) -> dict:
        return {"seed": 0}

    @property
    def has_tool_calling(self) -> bool:
        return False


class TestChatAdaptiveRouterIntegration(_Unsupported, ChatModelIntegrationTests):
    """Decisions with n = 1: ``strongest`` picks the greedy "large" deployment; streams pass through."""

    @property
    def chat_model_class(self) -> type[ChatAdaptiveRouter]:
        return ChatAdaptiveRouter

    @property
    def chat_model_params(self) -> dict:
        return {"fleet": local_fleet("large"), "models": local_models(), "router": "strongest",
                "max_tokens": MAX_TOKENS}

    @property
    def model_override_value(self) -> str:
        return "small"  # pinned per call: invoke(x, model="small")


class TestChatAdaptiveRouterBestOfNIntegration(_Unsupported, ChatModelIntegrationTests):
    """Decisions with n = 3: ``strongest`` picks "small" x3; the best sample is emitted once chosen.

    The whole suite is slow on a shared CPU (~3 min): ``make test-slow`` runs it;
    :class:`TestBestOfNStandardSubset` runs a representative part of it by default.
    """

    pytestmark = pytest.mark.slow

    @property
    def chat_model_class(self) -> type[ChatAdaptiveRouter]:
        return ChatAdaptiveRouter

    @property
    def chat_model_params(self) -> dict:
        return {"fleet": local_fleet("small"), "models": local_models(), "router": "strongest",
                "max_tokens": MAX_TOKENS}

    @property
    def model_override_value(self) -> str:
        return "large"


class TestBestOfNStandardSubset:
    """Standard integration tests run on the best-of-3 configuration in the default suite:
    invoke, async streaming, and streamed usage metadata (the same test code, called directly)."""

    suite = TestChatAdaptiveRouterBestOfNIntegration()

    @pytest.fixture
    def model(self) -> ChatAdaptiveRouter:
        return ChatAdaptiveRouter(**self.suite.chat_model_params)

    def test_invoke(self, model):
        assert model.invoke("Hello").response_metadata["n"] == 3
        ChatModelIntegrationTests.test_invoke(self.suite, model)

    async def test_astream(self, model):
        await ChatModelIntegrationTests.test_astream(self.suite, model)

    def test_usage_metadata_streaming(self, model):
        ChatModelIntegrationTests.test_usage_metadata_streaming(self.suite, model)
