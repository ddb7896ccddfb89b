# Two commands do all set-up on a fresh machine:
#   make demo   - the demo notebook executed end to end against the embedded local server
#   make test   - lint and the whole test suite
# Each creates .venv (from pyproject.toml) the first time.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench sandbox-deps browser-deps claude-code clean

# Claude Code's CLI for the tests of the claude-code framework: installed once from npm into a
# cache folder (about 240 MB) and found there through VM0_TEST_CLAUDE. Without npm, or when the
# registry refuses, the reason is printed and those tests skip.
CLAUDE_CODE_VERSION ?= 2.1.197
CLAUDE_CODE_DIR     ?= $(HOME)/.cache/vm0-notebook-test/claude-code
CLAUDE_BIN          := $(CLAUDE_CODE_DIR)/node_modules/.bin/claude
export VM0_TEST_CLAUDE ?= $(CLAUDE_BIN)

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

claude-code:
	@if [ -x "$(CLAUDE_BIN)" ] && "$(CLAUDE_BIN)" --version >/dev/null 2>&1; then :; \
	elif ! command -v npm >/dev/null 2>&1; then \
	  echo "note: npm not found (install Node.js); the Claude Code tests skip"; \
	else \
	  echo "installing @anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION) into $(CLAUDE_CODE_DIR)"; \
	  mkdir -p "$(CLAUDE_CODE_DIR)"; \
	  if ! npm install --prefix "$(CLAUDE_CODE_DIR)" --no-audit --no-fund --loglevel=error \
	      "@anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION)" >"$(CLAUDE_CODE_DIR)/npm.log" 2>&1; then \
	    echo "note: npm could not install Claude Code: $$(grep -m1 -i err "$(CLAUDE_CODE_DIR)/npm.log" \
	      || tail -n1 "$(CLAUDE_CODE_DIR)/npm.log"); the Claude Code tests skip"; \
	  fi; \
	fi

demo: $(STAMP) sandbox-deps
	$(PY) notebooks/execute.py notebooks/demo.ipynb

lint: $(STAMP)
	$(PY) -m ruff check vm0_notebook tests benchmarks notebooks
	$(VENV)/bin/lint-imports

test: $(STAMP) sandbox-deps browser-deps claude-code lint
	$(PY) -m pytest -n 2 -q

# every benchmark, then one table of figures against their baselines and goals
bench: $(STAMP) sandbox-deps claude-code
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
