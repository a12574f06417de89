# `make demo` and `make test` create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[cpu,test,ray]"
	# Quantus is a test reference only; its metadata pins what it does not need.
	$(BIN)/pip install --quiet --no-deps quantus==0.6.0
	# xplique (RISE reference) pins tensorflow<=2.20 and needs tf-keras: in a folder of its own, which
	# only its test's subprocess puts on sys.path (tests/xplique_rise_reference.py).
	$(BIN)/pip install --quiet --no-deps --upgrade --target $(VENV)/xplique xplique==2.0.2 \
		tensorflow-probability==0.25.0 tf-keras==2.21.0 decorator==5.3.2 dm-tree==0.1.10
	touch $(STAMP)

# The demo folder is the demo's own: --overwrite replaces an earlier demo's outputs.
demo: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/keras-edda compare --seeds 3 --methods none,random,edda \
		--eval-fill 0 --eval-fill blur --metric deletion_auc --metric road_morf \
		--eval-samples 64 --verbose 0 --out runs/demo --overwrite

test: $(STAMP)
	$(BIN)/ruff check keras_edda tests examples benchmarks docs
	# Two workers, one test file each at a time: much of a test's time is single-threaded tracing.
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python -m pytest -q -n 2 --dist loadfile tests

bench: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python benchmarks/explainers.py

clean:
	rm -rf $(VENV) runs *.egg-info
