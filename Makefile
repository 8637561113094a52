# The two commands of the README:  `make demo` (quickstart)  and  `make test`.
# Each creates .venv when missing and installs the pinned requirements; nothing else is needed.
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test test-all system-deps venv clean

venv: $(STAMP)

$(STAMP): requirements.txt setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	@touch $(STAMP)

# FFmpeg's shared libraries for torchcodec (the optional third decoder) and the `ffmpeg` binary
# used by `videossl data prepare`. Installed with apt when we are root; otherwise a note.
system-deps:
	@if ldconfig -p 2>/dev/null | grep -q libavcodec; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing FFmpeg libraries (apt-get install ffmpeg)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ffmpeg) >/dev/null; \
	else echo "note: FFmpeg libraries missing and not root: torchcodec tests will be skipped (sudo apt-get install ffmpeg)"; fi

demo: system-deps $(STAMP)
	$(VENV)/bin/videossl quickstart

test: system-deps $(STAMP)
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS) tests

test-all: system-deps $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS) tests

clean:
	rm -rf $(VENV) runs .pytest_cache
