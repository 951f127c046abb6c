# Two commands do everything on a fresh machine: `make lab` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8765

.PHONY: lab test lint bench emulator clean notebooks

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,lab]'
	touch $(STAMP)

## Start JupyterLab on notebooks/: says whether the notebooks call Model Studio (a key anywhere the
## kernels look: environment, .env, user config) or the local emulator, which it then starts and checks.
lab: $(STAMP)
	@bash scripts/lab.sh $(PORT)

# `make test` never calls the real service, whatever keys the shell has: every DASHSCOPE_* and
# QWEN_NB_* variable is removed for the test commands, and a user config file is not read
# (QWEN_NB_CONFIG points at an empty file); the notebooks then run on the plugin's emulator,
# from a temporary copy so that no .env is found above them. A notebook with a cassette folder
# beside it (NAME.cassettes/, recorded with qwen-nb record) is replayed from it instead.
KEYVARS  = $(sort $(filter DASHSCOPE_% QWEN_NB_%,$(.VARIABLES)))
NOKEYS   = env $(foreach v,$(KEYVARS),-u $(v)) QWEN_NB_CONFIG=/dev/null

## Run the whole test suite: ruff, mypy, import contracts, unit and integration tests, notebooks under nbval.
test: $(STAMP)
	$(BIN)/ruff check qwen_nb tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(NOKEYS) $(BIN)/python -m pytest tests
	$(BIN)/qwen-nb check-notebooks --strict notebooks
	@# the notebooks run from a copy with no .env on its way up: a key in notebooks/.env or ./.env stays unused
	tmp=$$(mktemp -d) && cp -R notebooks/. "$$tmp" && rm -f "$$tmp/.env" && \
	  (cd "$$tmp" && $(NOKEYS) "$(CURDIR)/$(BIN)/python" -m pytest --nbval . -p no:cacheprovider --qwen-emulator \
	    --qwen-replay -o qwen_replay_missing=run); \
	  rc=$$?; rm -rf "$$tmp"; exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check qwen_nb tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

## Run every benchmark and write bench/RESULTS.md (not part of `make test`).
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/run_all.py

## Record the tutorial notebooks: each NN_name.py -> NN_name.ipynb, run against a fresh emulator, no keys.
notebooks: $(STAMP)
	$(NOKEYS) $(BIN)/qwen-nb notebooks record

emulator: $(STAMP)
	$(BIN)/qwen-nb emulator --port $(PORT)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
