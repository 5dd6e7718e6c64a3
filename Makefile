# Entry points of the project. `make run` starts the demo service, `make test` runs every test layer.
SHELL := /bin/bash
PYTHON ?= python3
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
# /usr/local/bin/docker may lack BuildKit; /usr/bin/docker (docker.io) has it built in.
DOCKER ?= $(shell test -x /usr/bin/docker && echo /usr/bin/docker || echo docker)
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: help
help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: library/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade 'pip>=25.1'
	$(BIN)/pip install --quiet --editable 'library[all]' --group library/pyproject.toml:dev
	$(BIN)/pip install --quiet --editable demo
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## Create the virtual environment with the library and the dev tools

.PHONY: run
run: venv ## Start the demo service with gunicorn on http://$(HOST):$(PORT) (Ctrl-C stops it)
	cd demo && HOST=$(HOST) PORT=$(PORT) exec $(BIN)/python -m c2cdemo.run

.PHONY: lint
lint: venv ## Lint, check formatting and type-check the library
	cd library && $(BIN)/ruff check c2cwsgiutils tests
	cd library && $(BIN)/ruff format --check c2cwsgiutils tests
	cd library && $(BIN)/mypy
	cd demo && $(BIN)/ruff check c2cdemo && $(BIN)/ruff format --check c2cdemo

.PHONY: format
format: venv ## Fix what ruff can fix and format the code
	cd library && $(BIN)/ruff check --fix c2cwsgiutils tests; $(BIN)/ruff format c2cwsgiutils tests

.PHONY: unit
unit: venv ## Run the library's tests with branch coverage
	cd library && rm -f .coverage .coverage.* && \
		$(BIN)/coverage run -m pytest -p no:cacheprovider $(PYTEST_ARGS); status=$$?; \
		$(BIN)/coverage combine --quiet >/dev/null 2>&1; $(BIN)/coverage report --format=total | sed 's/^/branch coverage: /;s/$$/ %/'; exit $$status

.PHONY: test
test: lint unit ## Run every test layer (lint, types, unit and real-server tests)

.PHONY: docs
docs: venv ## Regenerate the settings table of library/README.md from the code
	cd library && $(BIN)/python -c 'import re, pathlib; from c2cwsgiutils import _settings; \
		p = pathlib.Path("README.md"); t = p.read_text(); \
		table = _settings.reference(_settings.all_settings_classes()); \
		p.write_text(re.sub(r"(<!-- settings:begin -->\n).*?(<!-- settings:end -->)", lambda m: m.group(1) + table + m.group(2), t, flags=re.S))'
