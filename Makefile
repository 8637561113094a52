# The two commands of the README:  `make demo` (quickstart)  and  `make test`.
# Each creates .venv when missing and installs the pinned requirements; nothing else is needed.
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test test-all system-deps venv clean

venv: $(STAMP)

# requirements.txt is the exact lock (it includes the setuptools that builds videossl, so the package install below
# needs no isolated build environment); pyproject.toml declares the package, its ranges and its recipes.
$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# System packages, installed with apt when we are root (otherwise a note, and the tests that need them skip):
#  - ffmpeg: FFmpeg's shared libraries for torchcodec (the optional third decoder) and the binary that
#    `videossl data prepare` runs;
#  - chromium: the headless browser the run-report test renders the HTML page in;
#  - espeak-ng: the speech synthesiser behind `videossl data speech` (CPC speaker probe).
APT_PACKAGES := $(if $(shell ldconfig -p 2>/dev/null | grep libavcodec),,ffmpeg) $(if $(shell command -v chromium),,chromium) \
                $(if $(shell command -v espeak-ng),,espeak-ng)
system-deps:
	@if [ -z "$(strip $(APT_PACKAGES))" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing system packages: $(strip $(APT_PACKAGES))"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES)) >/dev/null; \
	else echo "note: missing $(strip $(APT_PACKAGES)) and not root: the tests that need them are skipped (sudo apt-get install $(strip $(APT_PACKAGES)))"; fi

demo: system-deps $(STAMP)
	$(VENV)/bin/videossl quickstart

test: system-deps $(STAMP)
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS) tests

test-all: system-deps $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS) tests

clean:
	rm -rf $(VENV) runs .pytest_cache
