# Every target bootstraps .venv by itself (idempotent: reinstalls only when pyproject.toml changes).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: reproduce test lab book browser-deps data-samples venv clean gpu-check

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## The main job: the end-to-end pipeline in the `cpu` profile (writes results/).
reproduce: $(STAMP)
	$(PY) -m healthgpt_lite reproduce

## Unit tests + every notebook and exercise solution under papermill (smoke profile).
test: $(STAMP)
	$(PY) -m pytest -q --durations=15

## One GPU: an M3 stage-3 step vs its plan, then the `small` pipeline end to end, measured
## -> results/gpu_check_*.json (README "Checking on one GPU"). Without a GPU it stops with exit 2.
gpu-check: $(STAMP)
	PY=$(PY) bash scripts/gpu_check.sh

## The executed course as a static site: every notebook run in PROFILE (default cpu; reuses
## ARTIFACTS_DIR as `make reproduce` left it, trains what is missing) -> build/book/index.html.
PROFILE ?= cpu
book: $(STAMP)
	$(PY) -m healthgpt_lite book --profile $(PROFILE) --out build/book $(if $(ARTIFACTS_DIR),--artifacts $(ARTIFACTS_DIR))

## Debian's Chromium for the browser test of notebook 09 (tests/test_widgets_in_browser.py);
## without it that test is skipped (under CI=true it fails). Needs root and apt-get.
browser-deps:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

## For students: JupyterLab on the notebooks.
lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks

## Regenerate the committed sample data set and tokenizer (tests check it is byte-identical).
data-samples: $(STAMP)
	$(PY) -m healthgpt_lite data sample --out data_samples

clean:
	rm -rf results artifacts build .pytest_cache
