# edgeflow: `make quickstart` runs the main job, `make test` runs the tests. Both set up .venv first.
PY      := .venv/bin/python
PIP     := .venv/bin/pip
TORCH   ?= torch==2.13.0
STAMP   := .venv/.edgeflow-installed

.PHONY: setup quickstart test mlflow clean

setup: $(STAMP)

# torch is installed first and pinned, so no dependency can pull a (multi-GB) CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH)"
	$(PIP) install --quiet -e ".[test]" "$(TORCH)"
	touch $(STAMP)

quickstart: setup
	.venv/bin/edgeflow recipe=quickstart

test: setup
	$(PY) -m pytest -q -n auto --maxprocesses=4

# the MLflow store lives in the project home: $EDGEFLOW_HOME, else this folder
mlflow: setup
	.venv/bin/mlflow ui --backend-store-uri sqlite:///$(or $(EDGEFLOW_HOME),$(CURDIR))/mlflow.db

clean:
	rm -rf outputs multirun mlartifacts mlflow.db .pytest_cache
