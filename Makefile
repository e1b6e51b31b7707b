# edgeflow: `make quickstart` runs the main job, `make test` runs the tests. Both set up .venv first.
PY      := .venv/bin/python
PIP     := .venv/bin/pip
TORCH   ?= torch==2.13.0
STAMP   := .venv/.edgeflow-installed

.PHONY: setup quickstart test mlflow clean arm-toolchain

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

# the Cortex-M4 toolchain and emulator of the codegen stage (Debian/Ubuntu; root or sudo):
# arm-none-eabi-gcc, newlib (rdimon semihosting) and qemu-system-arm (mps2-an386). Without them
# the codegen tests that need them skip, naming this target.
arm-toolchain:
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get update
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm

# the MLflow store lives in the project home: $EDGEFLOW_HOME, else this folder
mlflow: setup
	.venv/bin/mlflow ui --backend-store-uri sqlite:///$(or $(EDGEFLOW_HOME),$(CURDIR))/mlflow.db

clean:
	rm -rf outputs multirun mlartifacts mlflow.db .pytest_cache
