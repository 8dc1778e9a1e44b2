# Each command makes its own virtual environment:
#   make demo   render the default project into demo/, install it, and train it
#   make test   lint the template's own code and run its tests but the slow ones (minutes)
#   make check  make test, then the slow tests: whole generated suites, real SLURM jobs, installs (CI)

PYTHON ?= python3
# The tests' torch and torchvision (the folder example decodes and augments images with it). torchvision
# pins one torch release, and PyPI's torchvision wheels need torch's CUDA libraries: a CPU build of torch
# beside them fails to import torchvision (`operator torchvision::nms does not exist`).
TORCH ?= torch==2.14.1 torchvision==0.29.1
# The default project (make demo) needs no torchvision: the CPU build of torch is enough, and a fraction of
# the size. On a machine with a GPU, set DEMO_TORCH=torch for the CUDA build.
DEMO_TORCH ?= torch==2.13.0
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test check lint clean

$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

test: lint
	$(PY) -m pytest -n 2 --maxschedchunk=1 -m "not slow" --durations=10

# The slow tests spend much of their time waiting (SLURM scheduling, requeues, processes starting), so one
# worker more than there are cores fills that time: on 2 cores, 11.6 minutes with 3 workers, 14.7 with 2
# and 12.7 with 4.
SLOW_WORKERS ?= $(shell $(PYTHON) -c "import os; print((os.cpu_count() or 1) + 1)")

# make test, then the slow tests: so CI, which runs this, runs both commands.
check: test
	$(PY) -m pytest -n $(SLOW_WORKERS) --maxschedchunk=1 -m slow --durations=25

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check hooks tests benchmarks local_extensions.py
	$(VENV)/bin/ruff format --check hooks tests benchmarks local_extensions.py

demo: $(VENV)/.installed
	rm -rf demo
	$(PY) -m cookiecutter --no-input --output-dir demo .
	cd demo/digits-classifier && $(PYTHON) -m venv .venv \
		&& .venv/bin/python -m pip install --quiet "$(DEMO_TORCH)" \
		&& .venv/bin/python -m pip install --quiet -e ".[dev]" \
		&& .venv/bin/python train.py \
		&& .venv/bin/pytest -q -m "not slow"
	@echo
	@echo "The demo project is in demo/digits-classifier, installed in its own .venv. Next:"
	@echo "    cd demo/digits-classifier && source .venv/bin/activate"
	@echo "    python train.py test --ckpt_path best     # the trained model on the held-out test split"
	@echo "    tensorboard --logdir logs                 # its curves"
	@echo "    pytest -n auto                            # the whole suite, the slow tests too"

clean:
	rm -rf demo $(VENV)
