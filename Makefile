# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install test demo bench clean

# Re-installs only when the packaging metadata changed; the package itself is editable.
$(STAMP): setup.cfg pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=23.1"
	$(PY) -m pip install -q -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q tests

demo: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" sh scripts/demo.sh

bench: $(STAMP)
	$(PY) scripts/bench/extract_throughput.py
	$(PY) scripts/bench/evaluate.py
	$(PY) scripts/bench/rerank.py
	$(PY) scripts/bench/cityscale.py

clean:
	rm -rf outputs build *.egg-info
