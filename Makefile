# Toonlab: `make run` sets up .venv and launches the studio; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-cpu

.PHONY: setup run test bench setup-gpu clean

$(STAMP): requirements.txt requirements-nodeps.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/python app.py $(ARGS)

test: setup
	$(BIN)/python -m pytest -q tests $(ARGS)

bench: setup
	$(BIN)/python -m studio.bench $(ARGS)

setup-gpu:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	grep -v -E '^(torch|onnxruntime)==' requirements.txt > $(VENV)/requirements-cpu-base.txt
	$(BIN)/python -m pip install -r $(VENV)/requirements-cpu-base.txt -r requirements-gpu.txt
	$(BIN)/python -m pip install --no-deps -r requirements-nodeps.txt

clean:
	rm -rf $(VENV)
