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
# The single test command (README and .ci/run call `make test`).
PYTEST_ARGS ?= tests notebooks solutions exercises --nbval --nbval-cell-timeout=600 --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider --durations=15

# The browser test drives Debian's chromium (browser downloads are impossible offline).
CHROMIUM := /usr/bin/chromium

.PHONY: setup lab test clean browser

setup: $(STAMP) browser

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	# torch first, pinned: an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt torch==2.13.0
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,trl]'
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

clean:
	rm -rf $(VENV) .pytest_cache
