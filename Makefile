# Two commands do everything (see README.md):
#   make lab    create .venv, install, open JupyterLab on notebooks/
#   make test   create .venv, install, run the unit tests, every notebook (nbval), the browser test
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=1200

.PHONY: install lab test unit notebooks e2e bench clean

install: $(STAMP)

# Re-runs whenever pyproject.toml changes. The kernel config keeps TensorFlow's C++ start-up
# log (written to file descriptor 2) out of notebook outputs.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,export]"
	mkdir -p $(VENV)/etc/ipython
	printf 'c.IPKernelApp.capture_fd_output = False\n' > $(VENV)/etc/ipython/ipython_kernel_config.py
	touch $@

# As root (containers, cloud machines) JupyterLab refuses to start without --allow-root.
lab: $(STAMP)
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/

test: $(STAMP)
	$(BIN)/python -m pytest tests --ignore=tests/e2e notebooks $(NBVAL) --durations=25
	$(BIN)/python -m pytest tests/e2e --durations=10

unit: $(STAMP)
	$(BIN)/python -m pytest tests --ignore=tests/e2e

notebooks: $(STAMP)
	$(BIN)/python -m pytest notebooks $(NBVAL)

e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e --durations=10

bench: $(STAMP)
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV)
