"""LiteLLM custom providers: ``local/NAME`` (an in-process model) and ``replay/MODEL`` (Records).

Register them in a proxy config.yaml::

    litellm_settings:
      custom_provider_map:
        - {provider: local,  custom_handler: adaptive_router.integrations.litellm_plugin.providers.local_provider}
        - {provider: replay, custom_handler: adaptive_router.integrations.litellm_plugin.providers.replay_provider}

or in Python with ``litellm.custom_provider_map = provider_map()``.

``local/NAME`` runs :mod:`adaptive_router.local_models` (SmolLM2 by name, or any Hugging Face
causal-LM folder by path): real samples, ``n`` of them in one ``generate`` call, real token
counts. ``max_tokens`` (default 64), ``temperature`` (0.7), ``top_p`` and ``seed`` apply.

``replay/MODEL`` answers a prompt from recorded Records (one JSONL file, e.g. written by
``adaptive-router data export``): the last user message must equal a record's prompt (modulo
surrounding whitespace), and the answer is ``n`` of ``MODEL``'s recorded samples, with their
recorded token counts as the usage, so routing policies can be evaluated offline on recorded
traffic at real prices. Which file: the deployment's ``records:`` parameter, else the plugin
setting ``replay_records``, else ``$ADAPTIVE_ROUTER_REPLAY_RECORDS``. ``n`` up to the number of
recorded samples draws without replacement (seeded by the request's ``seed``); beyond it the
extra samples are drawn again with replacement. ``max_tokens`` and ``temperature`` do not change
a recording; a deployment's ``latency_ms:`` makes it answer after that long (a
benchmark's stand-in for a model's speed). A prompt that is not in the records is an HTTP 400 that says so (a 400, not a
404: LiteLLM cools a deployment down after 404s, and one unknown prompt must not take the
replayed model out of service) -- unless the deployment names a stand-in model for unrecorded
prompts, ``unrecorded: local/smollm2-135m-instruct`` (issue 17): the prompt is then answered by
that real local model (``n`` samples, its real token counts, ``unrecorded_max_tokens`` new tokens
at most, default 48) and billed at the replayed deployment's prices, so a newcomer's own prompt
is routed, answered and priced as if the replayed model had answered it. The response's hidden
params say so (``adaptive_router_replay: {"stand_in": "local/..."}``).

Both report each sample's output tokens in the response's hidden params
(``adaptive_router_output_tokens``), which the proxy plugin uses for exact per-sample cost.
Streaming draws one sample (``n`` = 1); asking to stream several is a 400 that says why. A
replayed sample streams in word pieces; a local sample streams token by token as it is generated
(the usage arrives on the last chunk).
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import litellm
from litellm import CustomLLM
from litellm.llms.custom_llm import CustomLLMError
from litellm.types.utils import Choices, GenericStreamingChunk, Message, ModelResponse, Usage

from adaptive_router.errors import AdaptiveRouterError
from adaptive_router.prompts import prompt_from_messages
from adaptive_router.records import Record, read_records

HIDDEN_OUTPUT_TOKENS = "adaptive_router_output_tokens"
REPLAY_RECORDS_ENV = "ADAPTIVE_ROUTER_REPLAY_RECORDS"
_WS = re.compile(r"\s+")


def _fail(status: int, message: str) -> CustomLLMError:
    return CustomLLMError(status_code=status, message=message)


def _n_of(optional_params: Mapping[str, Any]) -> int:
    n = optional_params.get("n") or 1
    try:
        n = int(n)
    except (TypeError, ValueError):
        raise _fail(400, f"n must be a positive integer, got {n!r}") from None
    if n < 1:
        raise _fail(400, f"n must be a positive integer, got {n}")
    return n


def _prompt(messages: Sequence[Mapping[str, Any]]) -> str:
    try:
        return prompt_from_messages(messages)
    except AdaptiveRouterError as exc:
        raise _fail(exc.http_status, str(exc)) from None


def _response(model: str, texts: Sequence[str], prompt_tokens: int, output_tokens: Sequence[int],
              finish_reasons: Sequence[str], model_response: ModelResponse | None = None,
              extra_hidden: Mapping[str, Any] | None = None) -> ModelResponse:
    """A chat completion with n choices and real usage (prompt once, every sample's output)."""
    resp = model_response if model_response is not None else ModelResponse()
    resp.choices = [Choices(index=i, message=Message(role="assistant", content=t), finish_reason=r)
                    for i, (t, r) in enumerate(zip(texts, finish_reasons, strict=True))]
    total_out = int(sum(output_tokens))
    resp.usage = Usage(prompt_tokens=int(prompt_tokens), completion_tokens=total_out,
                       total_tokens=int(prompt_tokens) + total_out)
    resp.model = model
    resp.created = int(time.time())
    resp._hidden_params[HIDDEN_OUTPUT_TOKENS] = [int(t) for t in output_tokens]
    for k, v in (extra_hidden or {}).items():
        resp._hidden_params[k] = v
    return resp


def _stream_chunks(text: str, prompt_tokens: int, output_tokens: int, finish_reason: str,
                   pieces: int = 8) -> Iterator[GenericStreamingChunk]:
    """One sample as a stream of word-boundary pieces, usage on the last chunk."""
    words = re.findall(r"\S+\s*|\s+", text) or [text]
    step = max(1, len(words) // pieces)
    parts = ["".join(words[i:i + step]) for i in range(0, len(words), step)]
    for part in parts:
        yield GenericStreamingChunk(text=part, is_finished=False, finish_reason="", usage=None,
                                    index=0, tool_use=None)
    yield GenericStreamingChunk(
        text="", is_finished=True, finish_reason=finish_reason, index=0, tool_use=None,
        usage={"prompt_tokens": int(prompt_tokens), "completion_tokens": int(output_tokens),
               "total_tokens": int(prompt_tokens) + int(output_tokens)},
    )


def _single_sample_for_stream(optional_params: Mapping[str, Any]) -> None:
    if _n_of(optional_params) > 1:
        raise _fail(400, "streaming draws one sample; send n = 1 with stream = true, or "
                         "stream = false to receive n samples")


# -- replay ----------------------------------------------------------------------------------------
def normalise_prompt(text: str) -> str:
    """The lookup key of a prompt: whitespace runs collapsed, ends stripped."""
    return _WS.sub(" ", text).strip()


class RecordsIndex:
    """Records of one JSONL file, by normalised prompt; reloaded when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.mtime = path.stat().st_mtime
        self.records: dict[str, Record] = {}
        for rec in read_records(path):
            self.records.setdefault(normalise_prompt(rec.prompt), rec)
        self.models = sorted({m for r in self.records.values() for m in r.models})


class ReplayProvider(CustomLLM):
    """``replay/MODEL``: answers prompts from recorded samples of ``MODEL``."""

    def __init__(self) -> None:
        super().__init__()
        self._indexes: dict[str, RecordsIndex] = {}
        self._lock = threading.Lock()

    # -- records ------------------------------------------------------------------------------
    def records_path(self, optional_params: dict[str, Any]) -> Path:
        path = optional_params.pop("records", None)
        if not path:
            settings = getattr(litellm, "adaptive_router", None)
            if isinstance(settings, Mapping):
                path = settings.get("replay_records")
        path = os.environ.get(REPLAY_RECORDS_ENV) or path
        if not path:
            raise _fail(500, "replay/ needs recorded Records: set the deployment's `records:` "
                             f"parameter, the plugin setting replay_records, or ${REPLAY_RECORDS_ENV} "
                             "to a JSONL file (adaptive-router data export --data NAME --out FILE.jsonl)")
        if isinstance(path, str) and path.startswith("os.environ/"):
            path = os.environ.get(path[len("os.environ/"):], "")
        p = Path(str(path)).expanduser()
        if not p.is_absolute() and not p.exists():
            from adaptive_router.integrations.plugin_settings import proxy_config_dir

            config_dir = proxy_config_dir()
            if config_dir is not None and (config_dir / p).exists():
                p = config_dir / p
        if not p.exists():
            raise _fail(500, f"replay records file {p} does not exist; build one with "
                             "`adaptive-router data export --data NAME --out FILE.jsonl`")
        return p

    def index(self, path: Path) -> RecordsIndex:
        key = str(path.resolve())
        idx = self._indexes.get(key)
        if idx is None or idx.mtime != path.stat().st_mtime:
            with self._lock:
                idx = self._indexes.get(key)
                if idx is None or idx.mtime != path.stat().st_mtime:
                    try:
                        idx = RecordsIndex(path)
                    except AdaptiveRouterError as exc:
                        raise _fail(500, f"replay records {path} cannot be read: {exc}") from None
                    self._indexes[key] = idx
        return idx

    @staticmethod
    def latency_s(optional_params: dict[str, Any]) -> float:
        """The deployment's ``latency_ms`` parameter in seconds (0 when unset): a replayed model
        answers after that long, so benchmarks can give a cheap and a dear model their real
        speeds (``make bench``'s cascade row)."""
        raw = optional_params.pop("latency_ms", None)
        try:
            return max(0.0, float(raw)) / 1000.0 if raw is not None else 0.0
        except (TypeError, ValueError):
            raise _fail(500, f"replay latency_ms must be a number of milliseconds, got {raw!r}") from None

    @staticmethod
    def stand_in(optional_params: dict[str, Any]) -> tuple[str | None, int]:
        """The deployment's ``unrecorded:`` model (``local/NAME``) and its token limit, taken out
        of the parameters (they are the deployment's, not the provider call's)."""
        target = optional_params.pop("unrecorded", None)
        raw = optional_params.pop("unrecorded_max_tokens", None)
        try:
            limit = int(raw) if raw is not None else 48
        except (TypeError, ValueError):
            raise _fail(500, f"replay unrecorded_max_tokens must be an integer, got {raw!r}") from None
        if target is None:
            return None, limit
        if not isinstance(target, str) or not target.startswith("local/") or len(target) <= len("local/"):
            raise _fail(500, f"replay unrecorded: {target!r}: name a local model, e.g. "
                             "local/smollm2-135m-instruct (the only provider run in process)")
        return target[len("local/"):], limit

    def replay(self, model: str, messages: Sequence[Mapping[str, Any]],
               optional_params: dict[str, Any]) -> tuple[list[str], int, list[int], dict[str, Any]]:
        """(texts, prompt tokens, per-sample output tokens, info) of n recorded samples, or of n
        samples of the deployment's ``unrecorded:`` stand-in when the prompt is not recorded."""
        local_name, limit = self.stand_in(optional_params)
        path = self.records_path(optional_params)
        idx = self.index(path)
        prompt = _prompt(messages)
        rec = idx.records.get(normalise_prompt(prompt))
        if rec is None and local_name is not None:
            asked = optional_params.get("max_tokens") or optional_params.get("max_completion_tokens")
            params = {**optional_params, "max_tokens": min(int(asked or limit), limit)}
            gen = local_provider._generate(local_name, list(messages), params)
            return (list(gen.texts), int(gen.prompt_tokens), [int(t) for t in gen.output_tokens],
                    {"stand_in": f"local/{local_name}", "replayed_model": model,
                     "finish_reasons": list(gen.finish_reasons)})
        if rec is None:
            raise _fail(400, f"replay/{model}: this prompt is not in the records {path} "
                             f"({len(idx.records)} prompts); replay answers recorded prompts only. "
                             f"Prompt starts: {prompt[:80]!r}")
        if model not in rec.models:
            raise _fail(400, f"replay/{model}: record {rec.id!r} has no samples of {model!r}; it has "
                             f"{sorted(rec.models)} (models in the file: {idx.models})")
        samples = rec.models[model]
        k = len(samples.responses)
        if k == 0:
            raise _fail(400, f"replay/{model}: record {rec.id!r} holds no response texts for {model!r}")
        n = _n_of(optional_params)
        seed = optional_params.get("seed")
        rng = random.Random(seed) if seed is not None else random.Random()
        order = rng.sample(range(k), k=min(n, k)) + [rng.randrange(k) for _ in range(max(0, n - k))]
        tokens = samples.token_num_responses
        if not tokens:
            raise _fail(500, f"replay/{model}: record {rec.id!r} has no token counts; replay "
                             "reports recorded usage only (token_num_responses)")
        info = {"record_id": rec.id, "sample_indices": order,
                "estimated_tokens": samples.estimated_tokens}
        return ([samples.responses[i] for i in order], samples.token_num_prompt,
                [int(tokens[i]) for i in order], info)

    # -- LiteLLM entry points -----------------------------------------------------------------
    def completion(self, model: str, messages: list, api_base: str, custom_prompt_dict: dict,
                   model_response: ModelResponse, print_verbose: Any, encoding: Any, api_key: Any,
                   logging_obj: Any, optional_params: dict, acompletion: Any = None,
                   litellm_params: Any = None, logger_fn: Any = None, headers: Any = None,
                   timeout: Any = None, client: Any = None) -> ModelResponse:
        wait = self.latency_s(optional_params)
        if wait:
            time.sleep(wait)
        return self._answer(model, messages, model_response, optional_params)

    def _answer(self, model: str, messages: list, model_response: ModelResponse,
                optional_params: dict) -> ModelResponse:
        texts, ptok, otok, info = self.replay(model, messages, optional_params)
        reasons = info.pop("finish_reasons", None) or ["stop"] * len(texts)
        return _response(model, texts, ptok, otok, reasons, model_response,
                         {"adaptive_router_replay": info})

    async def acompletion(self, model: str, messages: list, api_base: str, custom_prompt_dict: dict,
                          model_response: ModelResponse, print_verbose: Any, encoding: Any,
                          api_key: Any, logging_obj: Any, optional_params: dict,
                          acompletion: Any = None, litellm_params: Any = None, logger_fn: Any = None,
                          headers: Any = None, timeout: Any = None, client: Any = None) -> ModelResponse:
        wait = self.latency_s(optional_params)
        if wait:  # a set latency waits without holding the event loop
            await asyncio.sleep(wait)
        if "unrecorded" in optional_params:  # a stand-in may generate: keep the event loop free
            return await asyncio.to_thread(self._answer, model, messages, model_response, optional_params)
        # an in-memory dict lookup: no thread needed (the first load of a file reads it once)
        return self._answer(model, messages, model_response, optional_params)

    def streaming(self, model: str, messages: list, api_base: str, custom_prompt_dict: dict,
                  model_response: ModelResponse, print_verbose: Any, encoding: Any, api_key: Any,
                  logging_obj: Any, optional_params: dict, acompletion: Any = None,
                  litellm_params: Any = None, logger_fn: Any = None, headers: Any = None,
                  timeout: Any = None, client: Any = None) -> Iterator[GenericStreamingChunk]:
        _single_sample_for_stream(optional_params)
        wait = self.latency_s(optional_params)
        if wait:
            time.sleep(wait)
        texts, ptok, otok, _ = self.replay(model, messages, optional_params)
        yield from _stream_chunks(texts[0], ptok, otok[0], "stop")

    async def astreaming(self, model: str, messages: list, api_base: str, custom_prompt_dict: dict,
                         model_response: ModelResponse, print_verbose: Any, encoding: Any,
                         api_key: Any, logging_obj: Any, optional_params: dict,
                         acompletion: Any = None, litellm_params: Any = None, logger_fn: Any = None,
                         headers: Any = None, timeout: Any = None,
                         client: Any = None) -> AsyncIterator[GenericStreamingChunk]:
        _single_sample_for_stream(optional_params)
        wait = self.latency_s(optional_params)
        if wait:  # the time to the first token
            await asyncio.sleep(wait)
        texts, ptok, otok, _ = await asyncio.to_thread(self.replay, model, messages, optional_params)
        for chunk in _stream_chunks(texts[0], ptok, otok[0], "stop"):
            yield chunk


# -- local ----------------------------------------------------------------------------------------
class LocalProvider(CustomLLM):
    """``local/NAME``: n real samples from an in-process transformers model."""

    default_max_tokens = 64

    def _model_and_kwargs(self, model: str, messages: list, optional_params: Mapping[str, Any]):
        from adaptive_router.local_models import load_local_model

        _prompt(messages)  # a clear 400 for an empty chat
        try:
            lm = load_local_model(model)
        except AdaptiveRouterError as exc:
            raise _fail(500, f"local/{model}: {exc}") from None
        max_tokens = optional_params.get("max_tokens") or optional_params.get("max_completion_tokens")
        temperature = optional_params.get("temperature")
        kwargs: dict[str, Any] = {
            "n": _n_of(optional_params),
            "max_new_tokens": int(max_tokens or self.default_max_tokens),
            "temperature": 0.7 if temperature is None else float(temperature),
        }
        if optional_params.get("top_p") is not None:
            kwargs["top_p"] = float(optional_params["top_p"])
        if optional_params.get("seed") is not None:
            kwargs["seed"] = int(optional_params["seed"])
        return lm, kwargs

    def _generate(self, model: str, messages: list, optional_params: Mapping[str, Any]):
        lm, kwargs = self._model_and_kwargs(model, messages, optional_params)
        return lm.generate(list(messages), **kwargs)

    def _stream(self, model: str, messages: list, optional_params: Mapping[str, Any]) -> Iterator[GenericStreamingChunk]:
        """Token-by-token streaming of one sample (transformers' TextIteratorStreamer).

        Generation runs in a thread holding the model's lock (one forward pass at a time, as
        :meth:`LocalChatModel.generate` does); the pieces are yielded as they are decoded and the
        last chunk carries the real usage.
        """
        import torch
        from transformers import TextIteratorStreamer

        lm, kw = self._model_and_kwargs(model, messages, optional_params)
        ids = lm.encode_messages(list(messages))
        input_ids = torch.tensor([ids], device=lm.device)
        streamer = TextIteratorStreamer(lm.tokenizer, skip_prompt=True, skip_special_tokens=True,
                                        timeout=600)
        gen: dict[str, Any] = {"max_new_tokens": kw["max_new_tokens"], "streamer": streamer,
                               "do_sample": kw["temperature"] > 0,
                               "pad_token_id": lm.tokenizer.pad_token_id,
                               "attention_mask": torch.ones_like(input_ids)}
        if gen["do_sample"]:
            gen.update(temperature=kw["temperature"], top_p=kw.get("top_p", 0.95))
        result: dict[str, Any] = {}

        def work() -> None:
            try:
                with lm._lock, torch.inference_mode():  # the model's own serialising lock
                    if kw.get("seed") is not None:
                        torch.manual_seed(kw["seed"])
                    result["out"] = lm.model.generate(input_ids, **gen)
            except Exception as exc:  # surface it to the reader instead of hanging the stream
                result["error"] = exc
                streamer.end()

        worker = threading.Thread(target=work, name="local-stream", daemon=True)
        worker.start()
        for piece in streamer:
            if piece:
                yield GenericStreamingChunk(text=piece, is_finished=False, finish_reason="", usage=None,
                                            index=0, tool_use=None)
        worker.join()
        if "error" in result:
            raise _fail(500, f"local/{model}: generation failed: {result['error']}")
        row = result["out"][0, len(ids):].tolist()
        stops = {lm.tokenizer.eos_token_id, lm.tokenizer.pad_token_id}
        produced = next((i + 1 for i, t in enumerate(row) if t in stops), None)
        out_tokens = produced if produced is not None else len(row)
        yield GenericStreamingChunk(
            text="", is_finished=True, finish_reason="stop" if produced is not None else "length",
            index=0, tool_use=None,
            usage={"prompt_tokens": len(ids), "completion_tokens": out_tokens,
                   "total_tokens": len(ids) + out_tokens})

    def completion(self, model: str, messages: list, api_base: str, custom_prompt_dict: dict,
                   model_response: ModelResponse, print_verbose: Any, encoding: Any, api_key: Any,
                   logging_obj: Any, optional_params: dict, acompletion: Any = None,
                   litellm_params: Any = None, logger_fn: Any = None, headers: Any = None,
                   timeout: Any = None, client: Any = None) -> ModelResponse:
        gen = self._generate(model, messages, optional_params)
        return _response(model, gen.texts, gen.prompt_tokens, gen.output_tokens, gen.finish_reasons,
                         model_response)

    async def acompletion(self, model: str, messages: list, api_base: str, custom_prompt_dict: dict,
                          model_response: ModelResponse, print_verbose: Any, encoding: Any,
                          api_key: Any, logging_obj: Any, optional_params: dict,
                          acompletion: Any = None, litellm_params: Any = None, logger_fn: Any = None,
                          headers: Any = None, timeout: Any = None, client: Any = None) -> ModelResponse:
        # generation is CPU-bound: keep the proxy's event loop free while it runs
        gen = await asyncio.to_thread(self._generate, model, messages, optional_params)
        return _response(model, gen.texts, gen.prompt_tokens, gen.output_tokens, gen.finish_reasons,
                         model_response)

    def streaming(self, model: str, messages: list, api_base: str, custom_prompt_dict: dict,
                  model_response: ModelResponse, print_verbose: Any, encoding: Any, api_key: Any,
                  logging_obj: Any, optional_params: dict, acompletion: Any = None,
                  litellm_params: Any = None, logger_fn: Any = None, headers: Any = None,
                  timeout: Any = None, client: Any = None) -> Iterator[GenericStreamingChunk]:
        _single_sample_for_stream(optional_params)
        yield from self._stream(model, messages, optional_params)

    async def astreaming(self, model: str, messages: list, api_base: str, custom_prompt_dict: dict,
                         model_response: ModelResponse, print_verbose: Any, encoding: Any,
                         api_key: Any, logging_obj: Any, optional_params: dict,
                         acompletion: Any = None, litellm_params: Any = None, logger_fn: Any = None,
                         headers: Any = None, timeout: Any = None,
                         client: Any = None) -> AsyncIterator[GenericStreamingChunk]:
        _single_sample_for_stream(optional_params)
        chunks = self._stream(model, messages, optional_params)
        done = object()
        while True:  # each next() waits for the model: off the event loop
            chunk = await asyncio.to_thread(next, chunks, done)
            if chunk is done:
                return
            yield chunk


#: Module-level instances for ``custom_provider_map`` (``custom_handler:`` takes a dotted path).
replay_provider = ReplayProvider()
local_provider = LocalProvider()


def provider_map() -> list[dict[str, Any]]:
    """``litellm.custom_provider_map`` entries for both providers (SDK use)."""
    return [{"provider": "replay", "custom_handler": replay_provider},
            {"provider": "local", "custom_handler": local_provider}]
