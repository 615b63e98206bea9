"""``ChatLocalModel``: a LangChain chat model over the bundled local SmolLM2 (or any HF causal LM).

Why it exists: the router needs a fleet it can really call offline — in the example, in the
LangChain standard integration tests and in CI — with real generation and real token counts, so
that usage metadata and dollar costs are measured rather than made up. It wraps
:func:`adaptive_router.local_models.load_local_model` (one shared model per process).

- ``n`` samples per call (a field, as on ``ChatOpenAI``, and a per-call keyword): the router asks
  for its best-of-n samples in one call. The result holds ``n`` generations; the prompt's tokens
  are reported once (on the first sample's ``usage_metadata``), every sample's output tokens on
  its own message, the totals in ``llm_output["token_usage"]``.
- ``stream`` really streams tokens as they are generated (a transformers streamer fed from a
  generation thread) and reports usage on the last chunk.
- ``stop`` sequences: streaming halts generation at the first stop string; the non-streaming
  path cuts the returned texts at it (the reported output tokens remain those generated).
- Per-call ``max_tokens`` / ``temperature`` / ``seed`` override the fields, so a router can set
  them for one call.

Tool calling, structured output and multimodal inputs are not supported (SmolLM2-135M cannot do
them reliably); ``bind_tools`` is therefore not implemented.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.utils import convert_to_openai_messages
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

from adaptive_router.local_models import DEFAULT_LOCAL_MODEL, load_local_model
from adaptive_router.prompts import content_text


def chat_dicts(messages: list[BaseMessage]) -> list[dict[str, Any]]:
    """LangChain messages as ``{role, content}`` dicts with plain-text content.

    Tool messages become user turns and AI tool calls are dropped: a local model without tool
    support still sees the conversation's text.
    """
    out = []
    for m in convert_to_openai_messages(messages):
        role = m.get("role", "user")
        if role not in ("system", "user", "assistant"):
            role = "user"
        out.append({"role": role, "content": content_text(m.get("content"))})
    return out


def cut_at_stop(text: str, stop: list[str] | None) -> tuple[str, bool]:
    """``text`` up to the first occurrence of any stop string, and whether one was found."""
    if not stop:
        return text, False
    hits = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    if not hits:
        return text, False
    return text[: min(hits)], True


class _IdQueue:
    """A transformers streamer that hands generated token ids to another thread.

    ``generate`` calls ``put`` with the prompt first, then with each new token; ``end`` once.
    """

    def __init__(self) -> None:
        self.queue: queue.Queue[list[int] | None] = queue.Queue()
        self._seen_prompt = False

    def put(self, value: Any) -> None:
        if not self._seen_prompt:
            self._seen_prompt = True
            return
        self.queue.put([int(t) for t in value.reshape(-1).tolist()])

    def end(self) -> None:
        self.queue.put(None)


class ChatLocalModel(BaseChatModel):
    """A LangChain chat model that runs a local causal LM (SmolLM2-135M-Instruct by default).

    Example::

        llm = ChatLocalModel(temperature=0, max_tokens=32)
        llm.invoke("What is 2 + 2?").usage_metadata   # real token counts
        llm.generate([[HumanMessage("Hi")]], n=3)      # three samples in one call
    """

    model: str = Field(default=DEFAULT_LOCAL_MODEL,
                       description="bundled model name or the path of a HF causal-LM folder")
    temperature: float = Field(default=0.7, ge=0.0, description="0 = greedy decoding")
    max_tokens: int = Field(default=64, ge=1, description="maximum new tokens per sample")
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    n: int = Field(default=1, ge=1, description="samples per call (best-of-n draws them at once)")
    seed: int | None = Field(default=None, description="torch seed before each call, for replays")
    stop: list[str] | None = None
    streaming: bool = False

    @property
    def _llm_type(self) -> str:
        return "adaptive-router-local"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, "temperature": self.temperature,
                "max_tokens": self.max_tokens, "top_p": self.top_p, "n": self.n}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="local", ls_model_name=kwargs.get("model") or self.model,
            ls_model_type="chat", ls_temperature=kwargs.get("temperature", self.temperature),
            ls_max_tokens=kwargs.get("max_tokens", self.max_tokens),
        )
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    def _combine_llm_outputs(self, llm_outputs: list[dict | None]) -> dict:
        """Sum the token usage of several prompts' calls (``generate`` with many prompts)."""
        usage: dict[str, int] = {}
        for out in llm_outputs:
            for k, v in ((out or {}).get("token_usage") or {}).items():
                usage[k] = usage.get(k, 0) + int(v)
        return {"model_name": self.model, "token_usage": usage}

    # -- settings of one call ---------------------------------------------------------------
    def _settings(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {
            "n": int(kwargs.get("n") or self.n),
            "max_new_tokens": int(kwargs.get("max_tokens") or self.max_tokens),
            "temperature": float(kwargs["temperature"] if kwargs.get("temperature") is not None
                                 else self.temperature),
            "top_p": float(kwargs.get("top_p") or self.top_p),
            "seed": kwargs.get("seed", self.seed),
            "stop": [s for s in (stop if stop is not None else self.stop) or [] if s],
        }

    # -- non-streaming: n samples in one call ----------------------------------------------
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        s = self._settings(stop, kwargs)
        local = load_local_model(self.model)
        gen = local.generate(chat_dicts(messages), n=s["n"], max_new_tokens=s["max_new_tokens"],
                             temperature=s["temperature"], top_p=s["top_p"], seed=s["seed"])
        generations = []
        for i, (text, out_tokens, reason) in enumerate(
            zip(gen.texts, gen.output_tokens, gen.finish_reasons, strict=True)
        ):
            text, stopped = cut_at_stop(text, s["stop"])
            prompt_tokens = gen.prompt_tokens if i == 0 else 0  # the prompt is paid once per call
            msg = AIMessage(
                content=text,
                usage_metadata={"input_tokens": prompt_tokens, "output_tokens": out_tokens,
                                "total_tokens": prompt_tokens + out_tokens},
                response_metadata={"model_name": self.model, "model_provider": "local",
                                   "finish_reason": "stop" if stopped else reason},
            )
            generations.append(ChatGeneration(message=msg, generation_info={
                "finish_reason": "stop" if stopped else reason}))
        total_out = sum(gen.output_tokens)
        return ChatResult(generations=generations, llm_output={
            "model_name": self.model,
            "token_usage": {"prompt_tokens": gen.prompt_tokens, "completion_tokens": total_out,
                            "total_tokens": gen.prompt_tokens + total_out},
        })

    # -- streaming: one sample, token by token -----------------------------------------------
    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        s = self._settings(stop, kwargs)
        local = load_local_model(self.model)
        tok = local.tokenizer
        prompt_ids = local.encode_messages(chat_dicts(messages))
        input_ids = torch.tensor([prompt_ids], device=local.device)
        halt = threading.Event()

        class _HaltOnEvent(StoppingCriteria):
            """Stops generation when the consumer found a stop string or went away."""

            def __call__(self, ids: Any, scores: Any, **kw: Any) -> Any:
                return torch.full((ids.shape[0],), halt.is_set(), dtype=torch.bool,
                                  device=ids.device)

        streamer = _IdQueue()
        gen_kwargs: dict[str, Any] = {
            "attention_mask": torch.ones_like(input_ids), "max_new_tokens": s["max_new_tokens"],
            "do_sample": s["temperature"] > 0, "pad_token_id": tok.pad_token_id,
            "streamer": streamer, "stopping_criteria": StoppingCriteriaList([_HaltOnEvent()]),
        }
        if s["temperature"] > 0:
            gen_kwargs.update(temperature=s["temperature"], top_p=s["top_p"])
        failure: list[BaseException] = []
        generated: list[int] = []

        def run() -> None:
            # the shared model serialises its calls (LocalChatModel holds one lock per model)
            try:
                with local._lock, torch.inference_mode():
                    if s["seed"] is not None:
                        torch.manual_seed(s["seed"])
                    out = local.model.generate(input_ids, **gen_kwargs)
                generated.append(int(out.shape[1]) - len(prompt_ids))
            except BaseException as exc:  # surfaced to the consumer below
                failure.append(exc)
                streamer.end()

        worker = threading.Thread(target=run, name="chat-local-stream", daemon=True)
        worker.start()
        ids: list[int] = []
        emitted = ""
        finish = "length"
        holdback = max((len(x) for x in s["stop"]), default=1) - 1
        try:
            while True:
                new = streamer.queue.get()
                if new is None:
                    break
                for t in new:
                    if t in (tok.eos_token_id, tok.pad_token_id):
                        finish = "stop"
                        halt.set()
                        break
                    ids.append(t)
                text = tok.decode(ids, skip_special_tokens=True).lstrip()
                cut, stopped = cut_at_stop(text, s["stop"])
                if stopped:
                    finish = "stop"
                    halt.set()
                safe = cut if stopped or finish == "stop" else cut[: max(len(emitted), len(cut) - holdback)]
                if safe.endswith("\ufffd"):  # an incomplete multi-byte character: wait for more
                    safe = safe[:-1]
                if len(safe) > len(emitted) and safe.startswith(emitted):
                    piece, emitted = safe[len(emitted):], safe
                    chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
                    if run_manager:
                        run_manager.on_llm_new_token(piece, chunk=chunk)
                    yield chunk
                if halt.is_set():
                    break
            worker.join()
            if failure:
                raise failure[0]
            # whatever the holdback kept (no stop string completed) belongs to the answer
            text = tok.decode(ids, skip_special_tokens=True).lstrip()
            cut, stopped = cut_at_stop(text, s["stop"])
            rest = cut[len(emitted):] if cut.startswith(emitted) else ""
            # the real count of generated tokens (an EOS counts; so do tokens generated after a
            # stop string appeared, before generation noticed)
            out_tokens = generated[0] if generated else len(ids)
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content=rest.rstrip(),
                    usage_metadata={"input_tokens": len(prompt_ids), "output_tokens": out_tokens,
                                    "total_tokens": len(prompt_ids) + out_tokens},
                    response_metadata={"model_name": self.model, "model_provider": "local",
                                       "finish_reason": finish},
                    chunk_position="last",
                ),
                generation_info={"finish_reason": finish},
            )
        finally:
            halt.set()  # the consumer stopped early: let the generation thread finish quickly
