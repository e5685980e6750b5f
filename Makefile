# Two commands for a fresh machine with Python 3.11+ and pip: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# llama.cpp builds from source; a portable build avoids CPU-specific instructions CI may lack.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF
PYTEST_ARGS ?=

.PHONY: install demo test lint browser clean bench

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[local,embeddings,notebook,test,ray]"
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/compare demo --out runs/demo

# Browser tests drive Debian's chromium (never a downloaded browser build).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q chromium; \
	  elif command -v sudo >/dev/null 2>&1; then sudo apt-get update -q && sudo apt-get install -y -q chromium; \
	  else echo "chromium is missing and cannot be installed without root: browser tests will fail (COMPARE_SKIP_BROWSER=1 skips them)"; fi; }

lint: install
	$(BIN)/ruff check compare tests bench

test: install browser lint
	$(BIN)/python -m pytest --nbval --nbval-sanitize-with notebooks/sanitize.cfg tests notebooks $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache runs/demo
