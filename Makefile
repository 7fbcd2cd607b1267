# Set-up and the two commands of the README. Uses the active virtual environment, or creates .venv.
#   make demo   install core + every first-party plugin, train the digits pipeline, evaluate it
#   make test   the same install plus test dependencies, then the whole test suite (quick tests on 2 workers)
#   make data   the same install, then the datasets made at preparation time, now rather than on first use
# TORCH selects the torch build installed when none is present (e.g. TORCH=torch for the newest release).

ifdef VIRTUAL_ENV
VENV := $(VIRTUAL_ENV)
else
VENV := .venv
endif
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH ?= torch==2.13.0
PLUGINS := $(sort $(wildcard plugins/*/pyproject.toml))
PLUGIN_DIRS := $(patsubst %/pyproject.toml,%,$(PLUGINS))

.PHONY: demo test data install install-test clean

$(PY):
	python3 -m venv $(VENV)

install: $(PY)
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install "$(TORCH)"
	$(PIP) install -e ".[plot]" $(foreach d,$(PLUGIN_DIRS),-e $(d))

install-test: install
	$(PIP) install -e ".[test]"

demo: install
	$(VENV)/bin/perceiver train digits --out runs/digits --overwrite
	$(VENV)/bin/perceiver evaluate --checkpoint runs/digits

# Datasets made at preparation time, cached with a fingerprint ($PERCEIVER_CACHE_DIR, else ~/.cache/perceiver/data):
# perceiver-audio's spoken digits (eSpeak NG, ~10 s) and perceiver-video's Big Buck Bunny windows (decoded once).
data: install
	$(VENV)/bin/perceiver data audio-words
	$(VENV)/bin/perceiver data video-ae-tiny
	$(VENV)/bin/perceiver data multimodal-ae-tiny

# Every test on 2 workers (pytest-xdist), except those marked serial (the scaffold test pip-installs a plugin into
# this environment), which run alone afterwards, and those marked exhaustive (one subprocess per case of a corpus
# whose every case the suite already runs in-process: `pytest -n 2 -m exhaustive`).
# One torch thread per test worker: two workers on two cores, so no worker's threads wait on the other's
# (oversubscribed, a training test runs many times slower). A value you set yourself is kept.
test: install-test
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(VENV)/bin/python -m pytest -n 2 -m "not serial and not exhaustive"
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(VENV)/bin/python -m pytest -m serial

clean:
	rm -rf runs .pytest_cache build *.egg-info plugins/*/*.egg-info
