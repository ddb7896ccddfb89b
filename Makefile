# Two commands do all set-up on a fresh machine:
#   make demo   - the demo notebook executed end to end against the embedded local server
#   make test   - lint and the whole test suite
# Each creates .venv (from pyproject.toml) the first time.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench sandbox-deps browser-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# System packages from Debian, installed where we can (CI runs as root on Debian): bubblewrap
# sandboxes agents (without it the server runs them as plain processes and the isolation tests
# skip); chromium drives the JupyterLab widget tests (without it they skip).
# $(call apt_install,COMMAND-THAT-CHECKS,PACKAGES)
define apt_install
	@if ! $(1) >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing $(2)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq --no-install-recommends $(2)) >/dev/null \
	      || echo "note: could not install $(2); the tests that need it skip"; \
	  else echo "note: $(2) not installed; the tests that need it skip"; fi; \
	fi
endef

sandbox-deps:
	$(call apt_install,command -v bwrap,bubblewrap)

browser-deps:
	$(call apt_install,test -x /usr/bin/chromium,chromium fonts-liberation)

demo: $(STAMP) sandbox-deps
	$(PY) notebooks/execute.py notebooks/demo.ipynb

lint: $(STAMP)
	$(PY) -m ruff check vm0_notebook tests benchmarks notebooks
	$(VENV)/bin/lint-imports

test: $(STAMP) sandbox-deps browser-deps lint
	$(PY) -m pytest -n 2 -q

bench: $(STAMP) sandbox-deps
	@for b in benchmarks/[!_]*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
