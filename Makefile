# Two commands do all the set-up on a fresh machine:
#   make run   -> create .venv if missing, install, run the default experiment (digits, BadNets, Cert-SSB)
#   make test  -> same set-up, run the test suite
# Extra Hydra overrides for `make run`: make run ARGS="attack=onepixel ensemble.n_members=32"

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.certssb-installed
# torch and torchvision are installed first and explicitly (a matching pair).
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
ARGS ?=
PYTEST_ARGS ?=

.PHONY: install run test test-fast test-numerics bench sweep-digits report clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@$(PY) -c "import torch, torchvision" 2>/dev/null || $(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(PY) -m certssb.run $(ARGS)

test: $(STAMP)
	WANDB_MODE=disabled $(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: $(STAMP)
	WANDB_MODE=disabled $(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

# The tests whose results go through float kernels (training paths, sigmas, certificates);
# CI reruns them with ATEN_CPU_CAPABILITY=default and CERTSSB_TEST_THREADS=2.
NUMERICS_TESTS := tests/test_ensemble_train.py tests/test_ensemble_precision.py tests/test_sigma_repro.py \
	tests/test_sigma_toy.py tests/test_certifier_scores.py tests/test_pipeline.py
test-numerics: $(STAMP)
	WANDB_MODE=disabled $(PY) -m pytest -q -m "not slow" $(NUMERICS_TESTS) $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m certssb.tools.bench --setting digits --quick

sweep-digits: $(STAMP)
	$(PY) -m certssb.run --config-dir multirun_sweeps --config-name digits_offline $(ARGS)

clean:
	rm -rf outputs multirun .pytest_cache
