# Two commands do all set-up on a fresh machine:
#   make demo   - the demo notebook executed end to end against the embedded local server
#   make test   - lint and the whole test suite
# Each creates .venv (from pyproject.toml) the first time.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench sandbox clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# bubblewrap sandboxes agents; without it the server falls back to plain processes and the
# sandbox tests skip, so install it where we can (CI runs as root on Debian).
sandbox:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap) >/dev/null \
	      || echo "note: could not install bubblewrap; agents run as plain processes"; \
	  else echo "note: bwrap not found; agents run as plain processes"; fi; }

demo: $(STAMP) sandbox
	$(PY) notebooks/execute.py notebooks/demo.ipynb

lint: $(STAMP)
	$(PY) -m ruff check vm0_notebook tests benchmarks notebooks

test: $(STAMP) sandbox lint
	$(PY) -m pytest -n 2 -q

bench: $(STAMP) sandbox
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
