# Two commands do everything on a fresh machine: `make lab` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8765

.PHONY: lab test lint bench emulator clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,lab]'
	touch $(STAMP)

## Start JupyterLab on notebooks/ (with the local emulator when DASHSCOPE_API_KEY is not set).
lab: $(STAMP)
	@bash scripts/lab.sh $(PORT)

## Run the whole test suite: ruff, mypy, import contracts, unit and integration tests, notebooks under nbval.
test: $(STAMP)
	$(BIN)/ruff check qwen_nb tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest tests
	$(BIN)/qwen-nb check-notebooks --strict notebooks
	$(BIN)/python -m pytest --nbval notebooks --nbval-sanitize-with=qwen_nb/data/nbval_sanitize.cfg -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check qwen_nb tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

## Run every benchmark and write bench/RESULTS.md (not part of `make test`).
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/run_all.py

emulator: $(STAMP)
	$(BIN)/qwen-nb emulator --port $(PORT)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
