"""A LangChain chain with adaptive routing: ``prompt | ChatAdaptiveRouter | StrOutputParser``.

Runs offline on the bundled SmolLM2-135M (CPU). The fleet has two deployments of it, priced
explicitly as a cheap and a dear model would be:

- ``smollm2-sampled``: temperature 0.7, callable once or as best-of-3 (majority vote over the
  samples' final answers), priced $0.05 / $0.20 per million input / output tokens;
- ``smollm2-greedy``: greedy decoding, the reference, priced $1.00 / $4.00 per million.

A router and the threshold knob decide (model, n) per question. By default the router is the
bundled trained one (MiniLM features, trained on RouteLLM's MMLU + GSM8K correctness data with
generic strong/weak roles; bound to this fleet, the reference plays strong): it predicts how
likely the cheap deployment is to do as well, and questions that look hard go to the reference.
``--router`` also takes a checkpoint folder or a baseline name (random, cheapest, strongest). A
callback handler reads each decision and the dollar cost of each call from the router's run —
what any tracer sees — while the chain itself returns plain strings. The second question is then
asked again with a per-call dollar budget through ``with_config(configurable=...)``, and the first once
pinned to best-of-3 (``llm.bind(model="smollm2-sampled#3")``).

    python examples/langchain_chain.py [--router default|random|DIR] [--threshold 0.6] [--max-tokens 16]
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from adaptive_router.integrations.langchain_plugin.chat import ChatAdaptiveRouter  # noqa: E402
from adaptive_router.integrations.langchain_plugin.local import ChatLocalModel  # noqa: E402
from adaptive_router.integrations.langchain_plugin.reporting import DECISION_EVENT  # noqa: E402
from langchain_core.callbacks import BaseCallbackHandler  # noqa: E402
from langchain_core.output_parsers import StrOutputParser  # noqa: E402
from langchain_core.prompts import ChatPromptTemplate  # noqa: E402
from langchain_core.runnables import ConfigurableField  # noqa: E402

from adaptive_router.domain import Fleet  # noqa: E402

QUESTIONS = [
    "What is 12 + 30?",
    "What is the capital of France?",
    "Prove that there are infinitely many primes.",
]


def build_fleet(max_tokens: int) -> Fleet:
    return Fleet.from_dict({
        "reference": "smollm2-greedy",
        "selector": "majority",
        "models": [
            {"name": "smollm2-sampled", "n": [1, 3], "expected_output_tokens": max_tokens,
             "price": {"input_per_million": 0.05, "output_per_million": 0.20}},
            {"name": "smollm2-greedy", "n": [1], "expected_output_tokens": max_tokens,
             "price": {"input_per_million": 1.00, "output_per_million": 4.00}},
        ],
    })


class DecisionLog(BaseCallbackHandler):
    """Collects, per routed call, the decision (a custom event) and the final cost (run end)."""

    def __init__(self) -> None:
        self.decisions: list[dict[str, Any]] = []
        self.results: list[dict[str, Any]] = []

    def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        if name == DECISION_EVENT:
            self.decisions.append(data)

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        meta = response.generations[0][0].message.response_metadata
        if "cost_usd" in meta:  # the router's run (the chosen model's own run has no cost)
            self.results.append(meta)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--router", default="default",
                        help="'default' (the bundled trained router), a checkpoint folder, or a "
                             "baseline name (random, cheapest, strongest)")
    parser.add_argument("--threshold", type=float, default=0.6)
    parser.add_argument("--max-tokens", type=int, default=16)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)  # a 135M model gains little from more threads on a shared CPU
    fleet = build_fleet(args.max_tokens)
    llm = ChatAdaptiveRouter(
        fleet=fleet,
        models={"smollm2-sampled": ChatLocalModel(temperature=0.7, seed=0),
                "smollm2-greedy": ChatLocalModel(temperature=0.0)},
        router=args.router,
        threshold=args.threshold,
        max_tokens=args.max_tokens,
    ).configurable_fields(budget_usd=ConfigurableField(id="budget_usd", name="dollars per request"),
                          threshold=ConfigurableField(id="threshold"))
    prompt = ChatPromptTemplate.from_messages([
        ("system", "You are a concise assistant. Answer in one short sentence."),
        ("human", "{question}"),
    ])
    chain = prompt | llm | StrOutputParser()

    log = DecisionLog()
    t0 = time.perf_counter()
    print(f"router={args.router} threshold={args.threshold} max_tokens={args.max_tokens}\n")
    # (question, label, the runnable to call, its config): the router decides for the first
    # questions; then a knob per call through with_config; then a call pinned to best-of-3
    budget = 1e-6
    runs: list[tuple[str, str, Any, dict[str, Any]]] = [(q, "", chain, {}) for q in QUESTIONS]
    runs.append((QUESTIONS[1], f"with_config budget_usd={budget:g}", chain,
                 {"configurable": {"budget_usd": budget, "threshold": None}}))
    pinned = prompt | llm.bind(model="smollm2-sampled#3") | StrOutputParser()
    runs.append((QUESTIONS[0], "pinned to smollm2-sampled#3", pinned, {}))
    for question, label, runnable, config in runs:
        answer = runnable.invoke({"question": question}, config={**config, "callbacks": [log]})
        decision, result = log.decisions[-1], log.results[-1]
        cost = result["cost"]
        print(f"Q: {question}" + (f"   [{label}]" if label else ""))
        print(f"   decision: {decision['candidate']} via {decision['policy']} "
              f"(expected ${decision['expected_cost_usd']:.8f})")
        print(f"   why:      {decision['reason']}")
        if result["n"] > 1:
            print(f"   best-of-{result['n']}: kept sample {result['selected_index']} by "
                  f"{result['selector']} (scores {result['reward_scores']})")
        print(f"   tokens:   {cost['prompt_tokens']} in, {cost['output_tokens']} out")
        print(f"   cost:     ${result['cost_usd']:.8f}")
        print(f"   answer:   {answer.strip()!r}\n")
    total = sum(r["cost_usd"] for r in log.results)
    print(f"{len(log.results)} calls, total ${total:.8f}, {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
