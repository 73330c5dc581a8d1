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
# The single test command (README and .ci/run call `make test`).
PYTEST_ARGS ?= tests notebooks solutions exercises $(NBVAL_ARGS) --durations=15
# `make test-portable`: the notebooks again, under the numerics of another CPU. Floats differ
# across CPUs (vector width, BLAS code paths) and training amplifies the last bit; these two
# switches perturb them on this machine: torch's scalar (non-vectorised) kernels, and MKL's
# reproducibility mode. A notebook change lands only when both runs pass, as `make test` does.
# exercises/ is not run again here: its notebooks store no outputs (a test checks it) and their
# given cells are the solutions' own, so under other numerics they can show nothing the solutions
# do not (make test still runs them once).
PORTABLE_PATHS ?= notebooks solutions
PORTABLE_NUMERICS := ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE

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
	$(PY) -m pytest $(PYTEST_ARGS)

# The two runs go side by side (each kernel is small; OMP_WAIT_POLICY=PASSIVE stops torch's
# threads from spinning against each other), each into its own log, shown when both are done.
test-portable: setup
	@mkdir -p build; status=0; pids=""; \
	for numerics in $(PORTABLE_NUMERICS); do \
	  env $$numerics OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest $(PORTABLE_PATHS) $(NBVAL_ARGS) -q \
	    > build/portable-$${numerics%%=*}.log 2>&1 & pids="$$pids $$!"; \
	done; \
	for pid in $$pids; do wait $$pid || status=1; done; \
	for numerics in $(PORTABLE_NUMERICS); do \
	  echo "== nbval on $(PORTABLE_PATHS) with $$numerics"; cat build/portable-$${numerics%%=*}.log; \
	done; \
	exit $$status

# The course website: static HTML in build/site from the notebooks' stored outputs (nothing is
# executed), warnings as errors. Copy build/site to any static host to publish it.
site: $(STAMP)
	$(PY) docs/site/build.py build/site

clean:
	rm -rf $(VENV) .pytest_cache
