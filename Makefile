# Two commands on a fresh machine:  make lab  |  make test
# Both create .venv when it is missing and (re)install only when pyproject.toml or
# constraints.txt changed, so the second run starts in seconds.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?= 8888
LAB_ARGS ?=
# JupyterLab refuses to run as root unless told; containers and CI often are root.
ROOT_ARGS := $(if $(filter 0,$(shell id -u)),--allow-root)
# nbval re-runs every notebook and compares what it prints with the stored outputs.
NBVAL_ARGS := --nbval --nbval-cell-timeout=600 --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider
# The single test command (README and .ci/run call `make test`): the unit tests and nbval on every
# notebook, spread over JOBS pytest-xdist workers (a notebook's cells stay on one worker, in order:
# --dist loadscope; OMP_WAIT_POLICY=PASSIVE stops torch's idle threads from spinning against the
# other worker's, and changes no bit). Under torch's scalar kernels: no stored output was computed
# with them, so a notebook whose outputs only the maintainer's CPU reproduces fails here
# (tests/numerics.py says why and what each numerics is).
JOBS ?= 2
PYTEST_ARGS ?= notebooks solutions tests exercises $(NBVAL_ARGS) -n $(JOBS) --dist loadscope --durations=15
SCALAR_NUMERICS = $(shell $(PYTHON) tests/numerics.py scalar)
# `make test-portable`: the notebooks again, under a second CPU's numerics (an AVX2 laptop's
# kernels and MKL path on an AVX-512 machine, MKL's oldest path elsewhere). A notebook change lands
# only when both runs pass. exercises/ is not run again here: its notebooks store no outputs (a
# test checks it) and their given cells are the solutions' own, so under other numerics they can
# show nothing the solutions do not (make test still runs them once).
PORTABLE_PATHS ?= notebooks solutions
OTHER_CPU_NUMERICS = $(shell $(PYTHON) tests/numerics.py other-cpu)

# The browser test drives Debian's chromium (browser downloads are impossible offline).
CHROMIUM := /usr/bin/chromium

.PHONY: setup lab test test-portable clean browser site

setup: $(STAMP) browser

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	# torch first, pinned: an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt torch==2.13.0
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,trl,docs]'
	$(PY) -m pip check
	touch $(STAMP)

# Installs chromium when it is missing and we are root (CI is); otherwise says what to do.
browser:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the browser test"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation fonts-noto-color-emoji >/dev/null; \
	  else \
	    echo "warning: $(CHROMIUM) is missing; the browser test will fail until you run: sudo apt-get install chromium"; \
	  fi; \
	fi

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --port=$(PORT) --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/notebooks $(ROOT_ARGS) $(LAB_ARGS)

test: setup
	env $(SCALAR_NUMERICS) OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest $(PYTEST_ARGS)

test-portable: setup
	env $(OTHER_CPU_NUMERICS) OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest $(PORTABLE_PATHS) $(NBVAL_ARGS) -n $(JOBS) --dist loadscope -q

# The course website: static HTML in build/site from the notebooks' stored outputs (nothing is
# executed), warnings as errors. Copy build/site to any static host to publish it.
site: $(STAMP)
	$(PY) docs/site/build.py build/site

clean:
	rm -rf $(VENV) .pytest_cache
