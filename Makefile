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

.PHONY: install run test test-fast bench sweep-digits report clean gpu-wheels gpu-check

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

bench: $(STAMP)
	$(PY) -m certssb.tools.bench --setting digits --quick

sweep-digits: $(STAMP)
	$(PY) -m certssb.run --config-dir multirun_sweeps --config-name digits_offline $(ARGS)

# --- GPU check -----------------------------------------------------------------------------
# The GPU machine has torch, torchvision, numpy, scipy, pandas, PyYAML and tqdm but no registry:
# `make gpu-wheels` (here, with a registry) puts the small pure-Python wheels the check needs into
# .gpu-wheels/ (ignored; carry it to the GPU machine). There, `make gpu-check` installs them
# offline into .gpu-venv (--system-site-packages, so the machine's torch is used; if that venv
# cannot see torch or has no pip, the wheels are unpacked into .gpu-site/ on PYTHONPATH instead)
# and runs python -m certssb.tools.gpu_check. `make gpu-check DRY=1`: the CPU dry run.
GPU_PY ?= python3
WHEEL_PY ?= $(if $(wildcard $(PY)),$(PY),$(PYTHON))
GPU_WHEELS := .gpu-wheels
GPU_VENV := .gpu-venv
GPU_PKGS := hydra-core omegaconf antlr4-python3-runtime submitit cloudpickle hydra-submitit-launcher \
            pytest pluggy iniconfig packaging pygments typing_extensions exceptiongroup tomli
DRY ?=

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
	@test -d $(GPU_WHEELS) || { echo "error: $(GPU_WHEELS)/ is missing: run make gpu-wheels where a registry is reachable, then carry it"; exit 2; }
	@if $(GPU_PY) -c "import hydra, omegaconf, submitit, pytest, hydra_plugins.hydra_submitit_launcher" 2>/dev/null; then \
	    echo "gpu-check: $(GPU_PY) has everything"; RUN_PY="$(GPU_PY)"; \
	elif { test -x $(GPU_VENV)/bin/python || $(GPU_PY) -m venv --system-site-packages $(GPU_VENV); } 2>/dev/null \
	    && $(GPU_VENV)/bin/python -c "import torch" 2>/dev/null \
	    && $(GPU_VENV)/bin/python -m pip install -q --no-index --find-links $(GPU_WHEELS) $(GPU_PKGS); then \
	    echo "gpu-check: wheels installed offline into $(GPU_VENV)"; RUN_PY="$(GPU_VENV)/bin/python"; \
	else \
	    echo "gpu-check: no usable venv/pip here: unpacking the wheels into .gpu-site/"; \
	    $(GPU_PY) -c "import glob, zipfile; [zipfile.ZipFile(w).extractall('.gpu-site') for w in glob.glob('$(GPU_WHEELS)/*.whl')]" || exit 2; \
	    RUN_PY="$(GPU_PY)"; export PYTHONPATH="$(CURDIR)/.gpu-site$${PYTHONPATH:+:$$PYTHONPATH}"; \
	fi; \
	export PYTHONPATH="$(CURDIR)$${PYTHONPATH:+:$$PYTHONPATH}" WANDB_MODE=disabled; \
	$$RUN_PY -m certssb.tools.gpu_check $(if $(DRY),--dry-run --device cpu,)

clean:
	rm -rf outputs multirun .pytest_cache
