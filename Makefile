# Two commands for a new user: `make run` and `make test` (README "Quick start").
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test interop lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/wansim doctor
	$(BIN)/wansim run experiments/quickstart.toml --out results/quickstart
	$(BIN)/wansim report results/quickstart

lint: $(STAMP)
	$(BIN)/ruff check wansim tests benchmarks

test: lint
	$(BIN)/python -m pytest -m "not interop"

# wansim against strongSwan 6.1 in a Debian sid chroot (root; builds the chroot on first use).
interop: $(STAMP)
	$(BIN)/python -m pytest -m interop tests/test_interop.py

bench: $(STAMP)
	for b in benchmarks/[!_]*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
