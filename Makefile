# bertviz_landscape — `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export GLUE_DIR ?= $(abspath ../shared/data/glue)
export WANDB_MODE ?= offline
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

DEMO ?= outputs/demo
# torch is pinned here only (pyproject.toml allows a range): the CPU build from the local wheels / index
TORCH ?= 2.13.0
# the optional extras every test needs (no launcher test skips with them): tests/test_launchers.py,
# tests/test_views.py, tests/test_notebook.py; and the docs site's
EXTRAS ?= slurm,ray,paraview,notebook,docs
.PHONY: help install install-extras test test-slow test-all notebook docs demo replicate replicate-overfit analyses plots bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -e 's/$$(TORCH)/$(TORCH)/g' -e 's/$$(EXTRAS)/$(EXTRAS)/g' \
		| awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python ## create .venv and install the project (CPU torch $(TORCH)) with test extras
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==$(TORCH)
	$(BIN)/pip install -q -e '.[test]'

install-extras: install ## add the extras $(EXTRAS): launchers, pyvista, nbclient, MkDocs (what the slow tests and make docs use)
	$(BIN)/pip install -q torch==$(TORCH) -e '.[test,$(EXTRAS)]'

TEST_WORKERS ?= 2
test: ## the default test suite (unit + a few integration tests on real GLUE and MiniLM), in TEST_WORKERS processes (pytest-xdist; 0: one)
	$(BIN)/python -m pytest -m "not slow" -p no:cacheprovider --durations=10 -n $(TEST_WORKERS)

test-slow: ## the slow tests only (launchers, wheel install, the tiny end-to-end demo, real-MiniLM acceptance); the notebook: make notebook
	$(BIN)/python -m pytest -m slow -p no:cacheprovider --deselect tests/test_notebook.py::test_the_quickstart_notebook_runs_end_to_end

notebook: ## execute examples/quickstart.ipynb end to end (nbclient; fails on any cell error)
	$(BIN)/python -m pytest -p no:cacheprovider tests/test_notebook.py

$(BIN)/mkdocs:
	$(BIN)/pip install -q torch==$(TORCH) -e '.[docs]'

docs: $(BIN)/mkdocs ## build the documentation site strictly (mkdocs.yml -> site/; a broken link or reference fails)
	$(BIN)/mkdocs build --strict

test-all: ## every test, slow ones included
	$(BIN)/python -m pytest -p no:cacheprovider

demo: ## the paper's story offline on a CPU (SST-2 + MRPC, MiniLM, 3 seeds per arm): train, surfaces, analyses, figures, W&B, report -> outputs/demo, docs/results/demo.md
	$(BIN)/bertviz-demo output_dir=$(DEMO) results_doc=docs/results/demo.md

# make replicate (conf/replicate.yaml, plan conf/plan/replicate.yaml): the learning-rate sweep of both
# inits on the selection seeds, then 5 confirmation seeds per arm at the chosen rates, on SST-2, δ2 from
# MRPC; its budget per stage kind and why no second task fits a CPU budget: conf/replicate.yaml.
REPLICATE ?= outputs/replicate
replicate: ## the confirmatory replicate: lr sweep of both inits on seeds 0-1, then 5 fresh seeds per arm, SST-2 (59 min measured on the 2-core CI-class VM, 5 Dec 2026) -> outputs/replicate, docs/results/replicate.md
	$(BIN)/bertviz-demo --config-name replicate output_dir=$(REPLICATE) results_doc=docs/results/replicate.md

# make replicate-overfit (conf/replicate_overfit.yaml): robustness to overfitting under the same frozen
# plan — 20 epochs on 1,024 SST-2 examples per confirmation seed and init, at the rates make replicate's
# sweep chose (its lr_sweep.json; without it the preset's 1e-4), analysis=longtrain, the report.
REPLICATE_OVERFIT ?= outputs/replicate_overfit
replicate-overfit: ## robustness to overfitting: 20 epochs, 5 confirmation seeds per arm at the replicate's chosen rates (45 min measured on 2 cores) -> outputs/replicate_overfit, docs/results/replicate_overfit.md
	$(BIN)/bertviz-demo --config-name replicate_overfit output_dir=$(REPLICATE_OVERFIT) rates_from=$(REPLICATE) results_doc=docs/results/replicate_overfit.md

ANALYSES ?= outputs/analyses
# one seed (its claims are "descriptive only"; make replicate decides across seeds); both_ways: each
# task is the main one once, δ2 from the other (one call: the runs train once, figures and report once)
ANALYSES_ARGS = output_dir=$(ANALYSES) train.experiment=analyses_cpu train.second_task=[] 'seeds=[0]' \
	'landscape.overrides=["data.max_train_samples=128","data.max_eval_samples=200"]'
analyses: ## every analysis, pretrained vs scratch, on MRPC and RTE (MiniLM, 5 epochs, one seed; ~1 h on 2 cores) -> outputs/analyses
	$(BIN)/bertviz-demo $(ANALYSES_ARGS) 'tasks=[mrpc,rte]' both_ways=true

plots: ## figures + report of a results directory: make plots RESULTS=outputs/demo
	$(BIN)/bertviz-plot results=$(or $(RESULTS),$(DEMO))

bench: ## speed: training vs a plain loop and the matmul peak, snapshot callback cost, landscape engine vs forward-pass limit, Hessian vs PyHessian
	$(BIN)/python benchmarks/bench_train.py  # per step: forward, backward, optimiser, Lightning, snapshots, data; real vs padded tokens
	$(BIN)/python benchmarks/bench_snapshots.py  # 12 blocks: A, then every 16, every step, A/A shuffled, the floor; ratios to the bracketing A runs, median with its 95 % interval; targets decided (~10 min)
	@if [ -d $(DEMO)/.stages ]; then $(BIN)/python benchmarks/roofline.py $(DEMO) --out docs/measured/roofline.md; fi  # stage | work | time | fraction of the limit | what bounds it
	@if [ -f benchmarks/bench_landscape.py ]; then $(BIN)/python benchmarks/bench_landscape.py; fi
	$(BIN)/python benchmarks/bench_padding.py  # evaluation batches cut by width vs every 64, side by side: s/point, padding, |ΔJ|
	$(BIN)/python benchmarks/bench_weight_update.py  # a grid point's weight update before/after its fusion (same bits), best of 5
	$(BIN)/python benchmarks/bench_hessian.py  # Hessian top eigenvalue + trace, ours vs PyHessian (needs the bench extra)

clean: ## remove outputs and caches (not the venv)
	rm -rf outputs multirun .pytest_cache site
