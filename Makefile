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

.PHONY: install run test test-fast test-numerics bench sweep-digits report clean gpu-wheels gpu-check

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@$(PY) -c "import torch, torchvision" 2>/dev/null || $(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e '.[dev,optuna]'
	@touch $(STAMP)

run: $(STAMP)
	$(PY) -m certssb.run $(ARGS)

# pytest-xdist workers: one per CPU core, at most 4 (each test uses one torch thread; whole
# files go to one worker, so module-scoped fixtures are built once). TEST_WORKERS=0: one process.
TEST_WORKERS ?= auto
XDIST = $(if $(filter 0,$(TEST_WORKERS)),-p no:xdist,-n $(TEST_WORKERS) --maxprocesses 4 --dist loadfile)

test: $(STAMP)
	WANDB_MODE=disabled $(PY) -m pytest -q $(XDIST) $(PYTEST_ARGS)

test-fast: $(STAMP)
	WANDB_MODE=disabled $(PY) -m pytest -q $(XDIST) -m "not slow" $(PYTEST_ARGS)

# The tests whose results go through float kernels (training paths, sigmas, certificates);
# CI reruns them with ATEN_CPU_CAPABILITY=default and CERTSSB_TEST_THREADS=2.
NUMERICS_TESTS := tests/test_ensemble_train.py tests/test_ensemble_precision.py tests/test_sigma_repro.py \
	tests/test_sigma_toy.py tests/test_certifier_scores.py tests/test_pipeline.py
test-numerics: $(STAMP)
	WANDB_MODE=disabled $(PY) -m pytest -q $(XDIST) -m "not slow" $(NUMERICS_TESTS) $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m certssb.tools.bench --setting digits --quick

sweep-digits: $(STAMP)
	$(PY) -m certssb.run --config-dir multirun_sweeps --config-name digits_offline $(ARGS)

# --- GPU check -----------------------------------------------------------------------------
# The GPU machine has torch, torchvision, numpy, scipy, pandas, PyYAML and tqdm but no registry:
# `make gpu-wheels` (here, with a registry) puts the small pure-Python wheels the check needs into
# .gpu-wheels/ (ignored; carry it to the GPU machine). There, `make gpu-check` (or, without make,
# `sh scripts/gpu-check.sh`) installs them offline and runs python -m certssb.tools.gpu_check
# (see scripts/gpu-check.sh). `make gpu-check DRY=1`: the CPU dry run.
GPU_PY ?= python3
WHEEL_PY ?= $(if $(wildcard $(PY)),$(PY),$(PYTHON))
GPU_WHEELS := .gpu-wheels
DRY ?=
CHECK_ARGS ?=

gpu-wheels:
	mkdir -p $(GPU_WHEELS)
	$(WHEEL_PY) -m pip download --no-deps -q -d $(GPU_WHEELS) --only-binary=:all: --platform any \
	    --python-version 3.10 --implementation py --abi none 'hydra-core>=1.3.2,<1.4' 'omegaconf>=2.3,<2.4' \
	    'submitit>=1.5' cloudpickle 'hydra-submitit-launcher>=1.2,<1.3' pytest pluggy iniconfig packaging \
	    pygments typing_extensions exceptiongroup tomli
	# antlr4-python3-runtime 4.9.3 (what omegaconf 2.3 needs) is published as a source archive only
	$(WHEEL_PY) -m pip wheel --no-deps -q -w $(GPU_WHEELS) antlr4-python3-runtime==4.9.3
	@ls $(GPU_WHEELS)

gpu-check:
	GPU_PY=$(GPU_PY) sh scripts/gpu-check.sh $(if $(DRY),--dry-run,) $(CHECK_ARGS)

clean:
	rm -rf outputs multirun .pytest_cache
